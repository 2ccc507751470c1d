"""The container tier's access to Docker and to the images `make images` built (IMAGE_TAG and IMAGE_REGISTRY as
in the Makefile). Without a daemon or the images the tier skips, saying why; in CI (CI set) tests/fixtures.py turns
each of those skips into a failure, as it does every skip outside the cluster tier."""

from __future__ import annotations

import os
from typing import NamedTuple

import pytest

from cluster.rehearsal.common import RehearsalError, built_image_tag, docker_client, require_image
from components._image import image_references


class Images(NamedTuple):
    tag: str
    registry: str
    components: str
    serving: str


@pytest.fixture(scope="session")
def images() -> Images:
    registry = os.environ.get("IMAGE_REGISTRY", "")
    try:
        tag = built_image_tag()
    except RehearsalError as error:
        pytest.skip(f"the container tier needs Docker and the built images: {error}")
    return Images(tag, registry, *image_references(registry, tag))


@pytest.fixture(scope="session")
def docker(images):
    """The Docker client, once both images are known to be built here."""
    try:
        client = docker_client()
        for image in (images.components, images.serving):
            require_image(client, image)
    except RehearsalError as error:
        pytest.skip(f"the container tier needs Docker and the built images: {error}")
    return client
