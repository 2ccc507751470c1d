"""Image references used by every component and by the SeldonDeployment the deploy step writes.

Both images are tagged with the project version, never ``latest`` (a ``latest`` tag makes Kubernetes pull
Always, which fails for images loaded into kind). ``KFP_MLOPS_IMAGE_REGISTRY`` (e.g. ``ghcr.io/acme/``) and
``KFP_MLOPS_IMAGE_TAG`` override them; they are read when the components are imported, so set them before
compiling.
"""

import os
from importlib.metadata import PackageNotFoundError, version

try:
    PROJECT_VERSION = version("kfp-mlops")
except PackageNotFoundError:  # running from a source tree that was not pip-installed
    PROJECT_VERSION = "0.1.0"


def image_references(registry: str, tag: str) -> tuple[str, str]:
    """(components image, serving image) for an image registry prefix and a tag."""
    if registry and not registry.endswith("/"):
        registry += "/"
    if tag == "latest":
        raise ValueError("the image tag must not be 'latest': Kubernetes would always pull, and kind images fail")
    return f"{registry}kfp-mlops-components:{tag}", f"{registry}kfp-mlops-serving:{tag}"


IMAGE_REGISTRY = os.environ.get("KFP_MLOPS_IMAGE_REGISTRY", "")
IMAGE_TAG = os.environ.get("KFP_MLOPS_IMAGE_TAG") or PROJECT_VERSION
COMPONENTS_IMAGE, SERVING_IMAGE = image_references(IMAGE_REGISTRY, IMAGE_TAG)
