"""sample_site."""
