"""Configuration: declarations, the generated sample, and start-up errors."""

import os

import pytest

from nova_twisted import conf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write(tmp_path, text):
    path = tmp_path / "nova.conf"
    path.write_text(text)
    return str(path)


def test_sample_file_is_generated_from_the_declarations():
    with open(os.path.join(ROOT, "etc", "nova.conf.sample")) as handle:
        assert handle.read() == conf.generate_sample(), (
            "etc/nova.conf.sample is stale: run `nova-manage config sample > etc/nova.conf.sample`"
        )


def test_every_option_is_declared_once_with_help():
    for section, opts in conf.SECTIONS.items():
        names = [opt.name for opt in opts]
        assert len(names) == len(set(names)), f"[{section}] declares an option twice"
        for opt in opts:
            assert opt.help.strip(), f"[{section}] {opt.name} has no help"
            opt.check(opt.default)  # the default itself is a valid value


def test_defaults_give_the_embedded_setup():
    c = conf.load(())
    assert c.database.connection == "sqlite:///state/nova.sqlite"
    assert c.transport.url == ["memory://"]
    assert c.compute.driver == "fake"
    assert c.DEFAULT.host  # the machine's host name


def test_values_are_typed_and_interpolated(tmp_path):
    path = write(
        tmp_path,
        "[DEFAULT]\nstate_path = /srv/nova\nreport_interval = 3\ndebug = yes\n"
        "[transport]\nurl = amqp://a:b@h1:5672/, amqp://a:b@h2:5672/\n",
    )
    c = conf.load([path])
    assert c.DEFAULT.report_interval == 3
    assert c.DEFAULT.debug is True
    assert c.database.connection == "sqlite:////srv/nova/nova.sqlite"
    assert c.compute.instances_path == "/srv/nova/instances"
    assert c.transport.url == ["amqp://a:b@h1:5672/", "amqp://a:b@h2:5672/"]
    assert c.sources == [path]


def test_later_files_and_flags_win(tmp_path):
    first = write(tmp_path, "[DEFAULT]\nhost = a\nreport_interval = 3\n")
    second = tmp_path / "b.conf"
    second.write_text("[DEFAULT]\nhost = b\n")
    c = conf.load([first, str(second)], {("DEFAULT", "host"): "c"})
    assert c.DEFAULT.host == "c"
    assert c.DEFAULT.report_interval == 3


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[databse]\nconnection = x\n", "[databse]: unknown section"),
        ("[database]\nconection = x\n", "[database] conection: unknown option"),
        ("[DEFAULT]\nreport_interval = ten\n", "[DEFAULT] report_interval: expected an integer, got 'ten'"),
        ("[DEFAULT]\nreport_interval = 0\n", "[DEFAULT] report_interval: 0 is below the minimum 1"),
        ("[DEFAULT]\ndebug = perhaps\n", "[DEFAULT] debug: expected true or false, got 'perhaps'"),
        (
            "[database]\nconnection = sqlite:///$nowhere/x\n",
            "[database] connection: $nowhere names no [DEFAULT] option",
        ),
        ("report_interval = 1\n", "cannot parse"),
    ],
)
def test_bad_configuration_names_file_section_and_option(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(conf.ConfigError) as info:
        conf.load([path])
    message = str(info.value)
    assert message.startswith(path + ":")
    assert expected in message
    assert "\n" not in message


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(conf.ConfigError, match="configuration file not found"):
        conf.load([str(tmp_path / "absent.conf")])


def test_mask_url_hides_passwords():
    assert conf.mask_url("mysql+pymysql://nova:s3cret@db/nova") == "mysql+pymysql://nova:***@db/nova"
    assert "s3cret" not in conf.mask_url("amqp://guest:s3cret@127.0.0.1:5672/")


def test_the_shipped_multi_daemon_config_points_at_mariadb_and_rabbitmq():
    c = conf.load([os.path.join(ROOT, "etc", "nova.conf")])
    assert c.database.connection.startswith("mysql+pymysql://")
    assert c.database.connection.endswith("/nova")
    assert c.transport.url == ["amqp://guest:guest@127.0.0.1:5672/"]
