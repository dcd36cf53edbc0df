"""The deploy files parse, and every region profile validates. (No Docker engine or
Kubernetes cluster runs here: these check the files, not a deployment.)"""

import json
from pathlib import Path

import pytest
import yaml

from multihowto.pipeline.ray_runner import SYSTEM_CONFIG
from multihowto.schemas.config import load_region

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


@pytest.mark.parametrize("profile", sorted((DEPLOY / "regions").glob("*.yaml")), ids=lambda p: p.stem)
def test_region_profiles_validate(profile):
    cfg = load_region(profile)
    assert cfg.name == profile.stem


def test_cloud_regions_split_the_manifest_and_write_to_s3():
    us, eu = load_region(DEPLOY / "regions" / "aws-us.yaml"), load_region(DEPLOY / "regions" / "aws-eu.yaml")
    assert {us.partition, eu.partition} == {"0/2", "1/2"}
    assert us.output.startswith("s3://") and eu.output.startswith("s3://") and us.output != eu.output
    assert us.download.allowed_hosts and us.source.manifest.startswith("s3://")


def test_cluster_manifests():
    launcher = yaml.safe_load((DEPLOY / "cluster" / "aws.yaml").read_text())
    assert launcher["provider"]["type"] == "aws" and launcher["head_node_type"] in launcher["available_node_types"]
    job = yaml.safe_load((DEPLOY / "cluster" / "rayjob.yaml").read_text())
    assert job["kind"] == "RayJob" and job["spec"]["entrypoint"].startswith("mhowto dataset --region ")
    # the cluster's head starts Ray with the settings a local run starts it with
    wanted = f"--system-config='{json.dumps(dict(SYSTEM_CONFIG))}'"
    assert any(wanted in cmd for cmd in launcher["head_start_ray_commands"] if "--head" in cmd)
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"]
    assert json.loads(head["system-config"]) == SYSTEM_CONFIG
    docker = (DEPLOY / "Dockerfile").read_text()
    assert "ffmpeg" in docker and "torch==2.13.0" in docker
