"""Egress guard: the test's containers reach each other and the package registries, nothing else.

iptables rules in Docker's DOCKER-USER chain (forwarded traffic) and in INPUT (traffic to the host
itself) for the bridges the test uses: docker0 while images build (apt-get to Debian's mirror, pip
to PyPI, DNS to the host's resolvers) and the compose project's bridge while the stack runs (its
own containers and DNS only: nothing in the stack needs the outside). Everything else is dropped
and counted; the test fails when a packet was dropped. Registry addresses are resolved on the host
when the guard is set up. The rules are removed at exit (and leftovers of a killed run at start).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import urllib.parse
from pathlib import Path

from .common import log

BUILD, STACK = "SENTINEL-CT-BUILD", "SENTINEL-CT-STACK"
REGISTRY_HOSTS = ("pypi.org", "files.pythonhosted.org")


class EgressGuard:
    def __init__(self, iptables: str, resolvers: list[str], registries: list[str]) -> None:
        self.iptables, self.resolvers, self.registries = iptables, resolvers, registries
        self.jumps: list[tuple[str, list[str]]] = []

    @classmethod
    def setup(cls, debian_mirror: str) -> EgressGuard | None:
        """The guard, or None (logged) where iptables or Docker's DOCKER-USER chain is missing."""
        iptables = shutil.which("iptables")
        if iptables is None or os.geteuid() != 0:
            log("egress guard off: needs root and iptables")
            return None
        if _ipt(iptables, "-S", "DOCKER-USER").returncode != 0:
            log("egress guard off: no DOCKER-USER chain (dockerd runs without iptables)")
            return None
        hosts = {urllib.parse.urlsplit(debian_mirror).hostname or "deb.debian.org", *REGISTRY_HOSTS}
        for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                    "https_proxy"):
            for url in os.environ.get(var, "").split():
                if urllib.parse.urlsplit(url).hostname:
                    hosts.add(urllib.parse.urlsplit(url).hostname or "")
        registries = sorted({addr for host in hosts for addr in _ipv4(host)})
        guard = cls(iptables, _resolvers(), registries)
        guard.remove()  # leftovers of a run that was killed
        for chain, allow_registries in ((BUILD, True), (STACK, False)):
            guard._chain(chain, allow_registries)
        log(f"egress guard on: registries {', '.join(sorted(hosts))} = {', '.join(registries)}; "
            f"DNS {', '.join(guard.resolvers) or 'anywhere'}")
        return guard

    def _chain(self, chain: str, allow_registries: bool) -> None:
        self._must("-N", chain)
        self._must("-A", chain, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN")
        for proto in ("udp", "tcp"):
            if self.resolvers:
                for resolver in self.resolvers:
                    self._must("-A", chain, "-p", proto, "-d", resolver, "--dport", "53", "-j", "RETURN")
            else:
                self._must("-A", chain, "-p", proto, "--dport", "53", "-j", "RETURN")
        if allow_registries:
            for addr in self.registries:
                self._must("-A", chain, "-p", "tcp", "-d", addr, "-m", "multiport", "--dports", "80,443",
                           "-j", "RETURN")
        self._must("-A", chain, "-j", "DROP")

    def guard_bridge(self, bridge: str, chain: str) -> None:
        """Send what leaves ``bridge`` (to another interface or to the host) through ``chain``."""
        for table_chain, rule in (("DOCKER-USER", ["-i", bridge, "!", "-o", bridge, "-j", chain]),
                                  ("INPUT", ["-i", bridge, "-j", chain])):
            self._must("-I", table_chain, "1", *rule)
            self.jumps.append((table_chain, rule))

    def unguard_bridge(self, bridge: str) -> None:
        """Take ``bridge`` out of the guard (its chain and counters stay until remove())."""
        for table_chain, rule in [j for j in self.jumps if j[1][1] == bridge]:
            _ipt(self.iptables, "-D", table_chain, *rule)
            self.jumps.remove((table_chain, rule))

    def dropped(self) -> dict[str, int]:
        """Packets dropped so far per chain."""
        out = {}
        for chain in (BUILD, STACK):
            res = _ipt(self.iptables, "-L", chain, "-v", "-x", "-n")
            drops = [line.split() for line in res.stdout.splitlines() if " DROP " in f" {line} "]
            out[chain] = sum(int(fields[0]) for fields in drops if fields and fields[0].isdigit())
        return out

    def remove(self) -> None:
        """Delete every jump to the guard's chains and the chains themselves (idempotent)."""
        for table_chain in ("DOCKER-USER", "INPUT"):
            res = _ipt(self.iptables, "-S", table_chain)
            for line in res.stdout.splitlines():
                if line.startswith("-A ") and line.split()[-1] in (BUILD, STACK):
                    _ipt(self.iptables, "-D", *line.split()[1:])
        for chain in (BUILD, STACK):
            _ipt(self.iptables, "-F", chain)
            _ipt(self.iptables, "-X", chain)
        self.jumps.clear()

    def _must(self, *args: str) -> None:
        res = _ipt(self.iptables, *args)
        if res.returncode != 0:
            raise RuntimeError(f"iptables {' '.join(args)}: {res.stderr.strip()}")


def _ipt(iptables: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([iptables, "-w", *args], capture_output=True, text=True, timeout=60, check=False)


def _ipv4(host: str) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, 443, socket.AF_INET, socket.SOCK_STREAM)}
    except OSError:
        return set()


def _resolvers() -> list[str]:
    """The upstream DNS servers dockerd forwards to (the host's, loopback ones skipped as dockerd does)."""
    found: list[str] = []
    for path in (Path("/etc/resolv.conf"), Path("/run/systemd/resolve/resolv.conf")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                try:
                    addr = ipaddress.ip_address(parts[1])
                except ValueError:
                    continue
                if addr.version == 4 and not addr.is_loopback and str(addr) not in found:
                    found.append(str(addr))
    return found
