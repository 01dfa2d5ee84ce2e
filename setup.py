"""nova-twisted: a compute cloud controller on Twisted, in the spirit of OpenStack Nova."""

from setuptools import find_packages, setup

setup(
    name="nova-twisted",
    version="0.1.0",
    description="Compute cloud controller (OpenStack Compute and EC2 APIs) on Twisted",
    python_requires=">=3.11",
    packages=find_packages(include=["nova_twisted", "nova_twisted.*", "plugins"]) + ["twisted.plugins"],
    # twisted/plugins is a namespace shared with Twisted: ship our files in it
    # as data, never an __init__.py of our own.
    package_data={
        "twisted": ["plugins/nova_*.py"],
        "nova_twisted.db": ["migrations/*.py", "migrations/*.mako", "migrations/versions/*.py"],
        "nova_twisted.rpc": ["*.xml"],
        "nova_twisted": ["data/*", "data/**/*"],
    },
    include_package_data=True,
    install_requires=[
        "Twisted[tls]>=24.3",
        "txAMQP>=0.8",
        "SQLAlchemy>=2.0",
        "alembic>=1.13",
        "PyMySQL>=1.1",
        "jsonschema>=4.0",
        "cryptography>=42",
        "pyOpenSSL>=24",
        "service-identity>=24",
        "treq>=23",
        "autobahn>=23",
        "PyYAML>=6",
        "bcrypt>=4",
        "numpy>=1.26",
        "pycdlib>=1.14",
        "orjson>=3.9",
    ],
    extras_require={
        "libvirt": ["libvirt-python>=9"],
        "test": [
            "pytest>=8",
            "pytest-timeout",
            "ruff",
            "hypothesis",
            "psutil",
            "boto3",
            "openstacksdk",
            "python-openstackclient",
            "python-glanceclient",
            "keystoneauth1",
            "schemathesis",
            "py-spy",
        ],
        "bench": ["oslo.messaging"],
    },
    entry_points={
        "console_scripts": [
            "nova-manage = nova_twisted.cmd.manage:main",
        ],
    },
)
