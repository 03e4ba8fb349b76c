"""After the refused site.yml run (converge.yml, which also diff-checked the whole listing):
the first things the host stage would have made are absent, looked at directly."""


def test_no_service_user(host):
    assert not host.user("agent").exists


def test_no_data_directory(host):
    assert not host.file("/srv/agent-workstation").exists


def test_base_packages_not_installed(host):
    # roles/base's first change: one apt transaction of base_packages (none is in the image).
    for name in ("acl", "jq", "unattended-upgrades"):
        assert not host.package(name).is_installed, name


def test_no_firewall_or_caddy(host):
    assert not host.package("nftables").is_installed
    assert not host.package("caddy").is_installed
    assert not host.file("/etc/caddy").exists


def test_the_fake_gpu_is_what_the_preflight_read(host):
    # The stand-in from prepare.yml answers as the recorded RTX 4090 (so the hardware preflight
    # passed and only the configuration was refused).
    out = host.check_output("nvidia-smi -q -x")
    assert "NVIDIA GeForce RTX 4090" in out
