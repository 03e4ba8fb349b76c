"""roles/base keeps an installed time daemon (Debian's real chrony package)."""


def test_chrony_still_installed(host):
    assert host.package("chrony").is_installed


def test_timesyncd_not_installed(host):
    # apt would have removed chrony to install it (Conflicts: time-daemon)
    assert not host.package("systemd-timesyncd").is_installed
    assert not host.file("/etc/systemd/timesyncd.conf.d/50-agent-workstation.conf").exists


def test_the_conflict_is_real(host):
    # the reason for the rule, read from the real package metadata
    out = host.check_output("apt-cache show systemd-timesyncd")
    assert "time-daemon" in out
