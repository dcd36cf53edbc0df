"""`ray start` for tests, with every node on 127.0.0.1.

Ray replaces a loopback --node-ip-address with the machine's routable address
(services.resolve_ip_for_localhost); a test cluster must keep all its traffic on
loopback, so this launcher keeps the address it is given."""

import sys

import ray._private.services as services

services.resolve_ip_for_localhost = lambda host: host

from ray.scripts.scripts import main  # noqa: E402

sys.exit(main())
