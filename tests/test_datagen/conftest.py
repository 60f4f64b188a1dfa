"""Fixtures of the datagen tests."""

import pytest


@pytest.fixture(scope="module")
def local_ray():
    """A private local Ray instance (2 CPUs) for the builds of one test module."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
