"""`pip install .` (not -e) ships every daemon's twistd plugin, the migrations and the AMQP spec."""

import os
import subprocess
import sys
import sysconfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAEMONS = [
    "nova-api",
    "nova-scheduler",
    "nova-conductor",
    "nova-compute",
    "nova-novncproxy",
    "nova-spicehtml5proxy",
    "nova-consoleauth",
    "nova-cert",
    "nova-all",
]


def test_an_installed_copy_lists_all_nine_daemons_in_twistd_help(tmp_path):
    target = tmp_path / "site"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            ROOT,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    installed = target / "twisted" / "plugins"
    assert sorted(p.name for p in installed.glob("nova_*.py")) == sorted(
        f"nova_{d.removeprefix('nova-')}.py" for d in DAEMONS
    )
    assert not (installed / "__init__.py").exists(), "twisted/plugins must stay a namespace without __init__.py"
    assert list((target / "nova_twisted" / "db" / "migrations" / "versions").glob("0001_*.py"))
    assert (target / "nova_twisted" / "rpc" / "amqp0-9-1.xml").exists()
    # -S: no site hooks, so the editable checkout in .venv is invisible; only the installed copy counts.
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(target)!r}, {sysconfig.get_paths()['purelib']!r}]\n"
        "sys.argv = ['twistd', '--help']\n"
        "from twisted.scripts.twistd import run\n"
        "run()\n"
    )
    helped = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    listing = helped.stdout
    for daemon in DAEMONS:
        assert f"    {daemon} " in listing, f"{daemon} missing from twistd --help:\n{listing}\n{helped.stderr}"
    loaded = subprocess.run(
        [sys.executable, "-S", "-c", code.replace("run()", "import nova_twisted; print(nova_twisted.__file__)")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert loaded.stdout.strip().startswith(str(target)), loaded.stdout


def _twistd(cwd, *args) -> subprocess.CompletedProcess:
    """``twistd --pidfile= -n ARGS`` from this environment, run in ``cwd``."""
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "twistd"), "--pidfile=", "-n", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_a_daemon_not_built_yet_says_so_and_exits_non_zero(tmp_path):
    done = _twistd(tmp_path, "nova-cert")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "nova-cert: error: the certificate service is not built yet in nova-twisted; this daemon cannot run."
    ]


def test_a_daemon_with_a_bad_configuration_gives_one_line_naming_file_section_and_option(tmp_path):
    bad = tmp_path / "nova.conf"
    bad.write_text("[DEFAULT]\nreport_interval = often\n")
    done = _twistd(tmp_path, "nova-scheduler", "--config", str(bad))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"nova-scheduler: error: {bad}: [DEFAULT] report_interval: expected an integer, got 'often'"
    ]
