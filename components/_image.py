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

IMAGE_REGISTRY = os.environ.get("KFP_MLOPS_IMAGE_REGISTRY", "")
if IMAGE_REGISTRY and not IMAGE_REGISTRY.endswith("/"):
    IMAGE_REGISTRY += "/"
IMAGE_TAG = os.environ.get("KFP_MLOPS_IMAGE_TAG") or PROJECT_VERSION
if IMAGE_TAG == "latest":
    raise ValueError("KFP_MLOPS_IMAGE_TAG must not be 'latest': Kubernetes would always pull, and kind images fail")

COMPONENTS_IMAGE = f"{IMAGE_REGISTRY}kfp-mlops-components:{IMAGE_TAG}"
SERVING_IMAGE = f"{IMAGE_REGISTRY}kfp-mlops-serving:{IMAGE_TAG}"
