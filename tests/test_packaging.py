"""streamrnn installed from a wheel, as a user gets it, away from the source checkout: the command
runs, and the development broker starts from the Maven file shipped as package data."""

import os
import pathlib
import shutil
import subprocess
import sys
import venv

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A virtual environment (on top of this interpreter's packages, for the dependencies) with
    streamrnn installed from a freshly built wheel; returns its python."""
    where = tmp_path_factory.mktemp("wheel")
    source = where / "source"  # a copy: building in the checkout would leave build/ behind
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(where / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = (where / "dist").glob("streamrnn-*.whl")
    venv.create(where / "env", system_site_packages=True, with_pip=False)
    python = where / "env" / "bin" / "python"
    # pip of this interpreter, aimed at the environment's site-packages
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return python, where


def run(python, *args, cwd, timeout=120):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([python, "-m", "streamrnn.cli", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env)


def test_the_wheel_is_what_runs_and_ships_the_broker_file(installed):
    python, where = installed
    found = subprocess.run([python, "-c", "import connectors.local_broker as b, streamrnn; "
                                          "print(streamrnn.__file__); print(b.POM.is_file())"],
                           capture_output=True, text=True, cwd=where, check=True).stdout.split()
    assert pathlib.Path(found[0]).is_relative_to(where / "env"), found  # not the checkout
    assert found[1] == "True"
    assert (where / "dist").glob("*.whl")
    version = run(python, "--version", cwd=where)
    assert version.returncode == 0 and version.stdout.startswith("streamrnn ")


def test_the_broker_starts_and_stops_from_the_installed_package(installed):
    python, where = installed
    workdir = where / "broker"
    started = run(python, "broker", "start", "--dir", str(workdir), "--port", "0", cwd=where, timeout=240)
    assert started.returncode == 0, started.stderr
    try:
        assert started.stdout.strip().startswith("127.0.0.1:")
    finally:
        stopped = run(python, "broker", "stop", "--dir", str(workdir), cwd=where)
    assert stopped.returncode == 0, stopped.stderr


def test_a_maven_failure_is_one_short_line_with_the_log_beside_it(tmp_path, monkeypatch):
    from connectors import local_broker

    pom = tmp_path / "pom.xml"
    pom.write_text("<project>broken")
    monkeypatch.setattr(local_broker, "POM", pom)
    with pytest.raises(local_broker.BrokerError) as refused:
        local_broker.ensure_jars(tmp_path / "home")
    message = str(refused.value)
    assert "\n" not in message and len(message) < 400, message
    assert "Non-readable POM" in message and str(tmp_path / "home" / "mvn.log") in message
    assert "expected end tag" in (tmp_path / "home" / "mvn.log").read_text()
