"""Architecture rules the code must keep: compute and the drivers never touch the database."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Packages that must reach the database only through conductor.
NO_DATABASE = [
    "nova_twisted/compute/manager.py",
    "nova_twisted/compute/service.py",
    "nova_twisted/compute/rpcapi.py",
    "nova_twisted/virt",
    "nova_twisted/conductor/rpcapi.py",
    "plugins/nova_fake.py",
    "plugins/nova_libvirt.py",
]


def _python_files(path):
    full = os.path.join(ROOT, path)
    if os.path.isfile(full):
        yield full
        return
    for directory, _, names in os.walk(full):
        for name in names:
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def _imports(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            for alias in node.names:
                yield f"{node.module}.{alias.name}"


def test_compute_and_drivers_never_import_the_database_package():
    offenders = []
    for path in NO_DATABASE:
        for source in _python_files(path):
            for name in _imports(source):
                if (
                    name == "nova_twisted.db"
                    or name.startswith("nova_twisted.db.")
                    or name == "sqlalchemy"
                    or name.startswith("sqlalchemy.")
                ):
                    offenders.append(f"{os.path.relpath(source, ROOT)} imports {name}")
    assert offenders == [], "compute must reach the database through conductor:\n" + "\n".join(offenders)


def test_a_running_compute_process_has_no_database_module_loaded():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from nova_twisted import conf\n"
        "from nova_twisted.compute import service\n"
        "from twisted.internet import reactor\n"
        "c = conf.load((), {('transport', 'url'): 'memory://layering'})\n"
        "service.build(c, reactor)\n"
        "loaded = [m for m in sys.modules if m.startswith('nova_twisted.db') or m.startswith('sqlalchemy')]\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"building nova-compute loaded database modules: {done.stdout}"
