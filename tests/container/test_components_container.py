"""The components image, really run: it runs as its own non-root user, which (like an arbitrary uid in group 0, as
OpenShift runs images) may write where KFP's launcher writes a step's artifacts (/minio, /gcs, /s3), in HOME and in
/tmp, finds matplotlib's font list there, and cannot change the code. The whole pipeline running in this image is
test_rehearsal.py's.

Skipped, saying why, without a Docker daemon or the images `make images` built (conftest.py); in CI (CI set) the
skip fails the run (tests/fixtures.py).
"""

from __future__ import annotations

import pytest

from tests.static.test_dockerfiles import components_user

pytestmark = pytest.mark.container

# The image's own user, and a uid it does not know in group 0: what OpenShift's restricted policy runs.
USERS = [None, "1000680000:0"]
WRITABLE = ["/minio", "/gcs", "/s3", "$HOME", "/tmp"]  # inside the container


def _run(docker, image: str, script: str, user: str | None) -> tuple[int, str, str]:
    """Runs ``script`` with sh in a fresh container of ``image`` (no network); its exit status, stdout, stderr."""
    options = {"user": user} if user else {}
    container = docker.containers.run(
        image, ["-c", script], entrypoint="sh", network_mode="none", detach=True, **options
    )
    try:
        status = container.wait(timeout=120)["StatusCode"]
        return (
            status,
            container.logs(stdout=True, stderr=False).decode(),
            container.logs(stdout=False, stderr=True).decode(),
        )
    finally:
        container.remove(force=True)


def test_the_image_runs_as_its_own_non_root_user(images, docker):
    status, out, err = _run(docker, images.components, "id -u; id -g; echo $HOME", None)

    assert status == 0, err
    uid, gid, home = out.split()
    assert uid == components_user() and uid != "0" and gid != "0"
    assert home.startswith("/home/")


@pytest.mark.parametrize("user", USERS, ids=["image-user", "arbitrary-uid-group-0"])
def test_the_launchers_directories_home_and_tmp_are_writable(images, docker, user):
    script = "".join(
        f'mkdir -p "{directory}/kfp-mlops-test/a" && echo x > "{directory}/kfp-mlops-test/a/file" '
        f'|| echo "cannot write under {directory} ($(id -u):$(id -g))"\n'
        for directory in WRITABLE
    )

    status, out, err = _run(docker, images.components, script, user)

    assert status == 0 and out == "", out + err


@pytest.mark.parametrize("user", USERS, ids=["image-user", "arbitrary-uid-group-0"])
def test_matplotlib_and_mlflow_use_home_and_find_the_font_list_built_with_the_image(images, docker, user):
    """No step builds matplotlib's font list (seconds, every step: each is a fresh container) nor falls back to a
    temporary directory because HOME is not writable."""
    script = (
        'python3 -c "import matplotlib.font_manager, mlflow, os; '
        "cache = matplotlib.get_cachedir(); "
        "print(cache.startswith(os.environ['HOME']), any(name.startswith('fontlist') for name in os.listdir(cache)))\""
    )

    status, out, err = _run(docker, images.components, script, user)

    assert status == 0, err
    assert out.split() == ["True", "True"]
    assert "building the font cache" not in err and "temporary cache directory" not in err, err


@pytest.mark.parametrize("user", USERS, ids=["image-user", "arbitrary-uid-group-0"])
def test_the_user_cannot_change_the_code_or_the_dependencies(images, docker, user):
    script = (
        'site="$(python3 -c "import sysconfig; print(sysconfig.get_paths()[\'purelib\'])")"\n'
        'find /opt/kfp-mlops "$site" -writable -print -quit\n'
        "if touch /opt/kfp-mlops/components/__init__.py 2>/dev/null; then echo touched the code; fi\n"
    )

    status, out, err = _run(docker, images.components, script, user)

    assert status == 0 and err == "", err
    assert out == "", f"writable by {user or 'the image user'}: {out}"
