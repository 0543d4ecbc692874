"""The lab's site-to-site VPN: two strongSwan daemons in two network namespaces.

It stands in for NHN Cloud's strongSwan VM (namespace side ``nhn``, the initiator)
and an AWS site-to-site VPN (side ``aws``, the responder) with AWS's two tunnels.
Each tunnel is its own IKE_SA + CHILD_SA over its own veth pair, so one can fail
while the other stays up, exactly what drorch must tell apart.

Networks (``A`` random in 16..31, ``B`` even, chosen so the /23 overlaps nothing on the host)::

    host (the AWS VPC)                aws namespace                       nhn namespace (NHN Cloud)
    172.A.B+1.{1,2..}/24 on dv*h ---- dv*x 172.A.B+1.254/24 (router)
    route 172.A.B.0/24 via .254       ip_forward=1
                                      dv*a1 10.X.Y.2/30 ==== tunnel-1 ==== dv*n1 10.X.Y.1/30
                                      dv*a2 10.X.Y.6/30 ==== tunnel-2 ==== dv*n2 10.X.Y.5/30
                                                                          172.A.B.{1,3..}/32 on lo

Both CHILD_SAs carry the same traffic selectors, NHN subnet 172.A.B.0/24 <-> AWS
subnet 172.A.B+1.0/24, like the two tunnels of an AWS site-to-site VPN. Whatever
sits on the host's end of the host link (the lab's AWS sites) and on the nhn
namespace's ``lo`` (the NHN site) reaches the other side only through a tunnel:
nothing else routes between them. charon gives both CHILD_SAs the same reqid
(same selectors), and kernel-libipsec sends outbound packets with one SA of that
reqid (in these measurements the most recently installed; each side chooses for
itself), so one tunnel carries the traffic and the other stands by: an
active/standby pair, not load sharing. Measured here (strongSwan 5.9.8): when the carrying tunnel's
SAs are deleted, the next packet leaves through the other tunnel (no route
change, established TCP connections survive); with both down charon removes the
routes of table 220, so packets get "network unreachable" at once (nothing falls
back to an unencrypted path: there is none). When a tunnel comes back it becomes
the carrying one again. A tunnel that fails without its SAs being deleted
(no delete notify) keeps attracting traffic until dead-peer detection
(``dpd_delay``) clears it; ``tunnel_down`` deletes the SAs on both sides, which is
what an AWS endpoint going away looks like once DPD has run.

Layout inside the directory ``DIR`` given to :func:`start`::

    DIR/vpn.json                 manifest (what exists, so stop_dir can remove it after a crash)
    DIR/psk.secret               the pre-shared key (0600)
    DIR/<side>/strongswan.conf   the daemon's own config (STRONGSWAN_CONF)
    DIR/<side>/swanctl.conf      connections and the PSK (0600)
    DIR/<side>/charon.log        the daemon's log
    DIR/<side>/run/              bind-mounted over /run inside the daemon's mount namespace:
                                 charon.pid and charon.vici, reachable from the host as they are

charon's PID file and VICI socket paths are compiled in (/run/...), so each daemon
runs in a private mount namespace with ``DIR/<side>/run`` mounted over /run. The
socket's inode lives in that host directory, so the host connects to it directly.
This kernel has no ESP: the daemons use the userspace ``kernel-libipsec`` plugin
(a TUN device ``ipsec0`` plus routes in table 220 inside each namespace).

The host end of the host link lives in the host's namespace but is destroyed with
its peer when the aws namespace is deleted, taking its addresses and route along.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import random
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from drorch.errors import InvalidInput, OperationFailed, RefusedForSafety
from drorch.lab import processes
from drorch.lab.files import write_private
from drorch.providers import strongswan

CHARON = Path("/usr/lib/ipsec/charon")
LIBIPSEC_PLUGIN = Path("/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so")
SWANCTL = "swanctl"
IP = "ip"
UNSHARE = "unshare"
SIDES = ("nhn", "aws")  # nhn initiates, aws responds (as AWS's endpoints do)
TUNNEL_COUNT = 2
START_TIMEOUT_SECONDS = 30.0
TUNNEL_TIMEOUT_SECONDS = 20.0
COMMAND_TIMEOUT_SECONDS = 15.0
MANIFEST = "vpn.json"
_SOCKET_LIMIT = 107  # bytes in sun_path, without the NUL
_DISABLED_PLUGINS = ("stroke", "resolve", "forecast", "farp", "dhcp", "ha", "lookip", "error-notify", "connmark")
ROUTER_HOST = 254  # the aws namespace's address on the host link, the host's gateway to the NHN subnet
_ROUTE_KEYWORDS = frozenset({"local", "broadcast", "unreachable", "blackhole", "prohibit", "throw", "multicast",
                             "anycast", "unicast", "nat"})


@dataclass(frozen=True)
class Side:
    """One strongSwan daemon: its namespace, the VICI socket the host uses, and its PID."""

    name: str
    namespace: str
    directory: Path
    vici_socket: Path
    pid: int
    argv0: str  # charon's argv as the kernel shows it, checked before any signal (PIDs get reused)

    @property
    def tracked(self) -> processes.Tracked:
        return processes.Tracked("charon", self.pid, (self.argv0,))  # PID file DIR/<side>/charon.pid


@dataclass(frozen=True)
class Tunnel:
    """One of the two tunnels: its IKE_SA and CHILD_SA names and outside (IKE peer) addresses.

    Both tunnels protect the same subnets (VpnLab.nhn_subnet <-> VpnLab.aws_subnet).
    """

    name: str  # the CHILD_SA name
    ike_sa: str
    nhn_outside: str
    aws_outside: str
    nhn_link: str  # veth in the nhn namespace
    aws_link: str  # its peer in the aws namespace


@dataclass(frozen=True)
class VpnLab:
    root: Path
    nhn: Side
    aws: Side
    tunnels: tuple[Tunnel, ...]
    psk_file: Path
    nhn_subnet: str  # CIDR behind the nhn side (addresses on the nhn namespace's lo)
    aws_subnet: str  # CIDR behind the aws side (addresses on the host's end of the host link)
    nhn_addresses: tuple[str, ...]  # on lo in the nhn namespace
    host_addresses: tuple[str, ...]  # on the host's end of the host link; the first is the host's source
    aws_router: str  # the aws namespace's end of the host link
    host_link: str  # veth in the host's namespace
    aws_host_link: str  # its peer in the aws namespace

    @property
    def sides(self) -> tuple[Side, Side]:
        return (self.nhn, self.aws)

    @property
    def namespaces(self) -> tuple[str, str]:
        return (self.nhn.namespace, self.aws.namespace)

    @property
    def ike_sas(self) -> tuple[str, ...]:
        return tuple(t.ike_sa for t in self.tunnels)

    @property
    def children(self) -> list[str]:
        """CHILD_SA names, as ``vpn.tunnels`` in drorch.yaml lists them."""
        return [t.name for t in self.tunnels]

    @property
    def pids(self) -> tuple[int, int]:
        return (self.nhn.pid, self.aws.pid)

    def side(self, name: str) -> Side:
        for item in self.sides:
            if item.name == name:
                return item
        raise InvalidInput(f"unknown VPN side {name!r}: expected one of {', '.join(SIDES)}")

    def tunnel(self, name: str) -> Tunnel:
        for item in self.tunnels:
            if item.name == name:
                return item
        raise InvalidInput(f"unknown tunnel {name!r}: this VPN has {', '.join(self.children)}")

    def nhn_address(self, host: int) -> str:
        """Address number ``host`` of the NHN subnet (an error unless it was created by start)."""
        return self._member(self.nhn_subnet, host, self.nhn_addresses, "nhn_hosts")

    def aws_address(self, host: int) -> str:
        """Address number ``host`` of the AWS subnet, on the host (an error unless it was created by start)."""
        return self._member(self.aws_subnet, host, self.host_addresses, "aws_hosts")

    @staticmethod
    def _member(subnet: str, host: int, present: tuple[str, ...], option: str) -> str:
        address = str(ipaddress.ip_network(subnet)[host])
        if address not in present:
            raise InvalidInput(f"{address} is not one of this VPN's addresses ({', '.join(present)}); "
                               f"pass {host} in {option} to start")
        return address


# ---------------------------------------------------------------- public API


def start(directory: Path, nhn_hosts: Iterable[int] = (1,), aws_hosts: Iterable[int] = (1,)) -> VpnLab:
    """Start the VPN described above in ``directory`` and wait until both tunnels are INSTALLED.

    ``nhn_hosts`` are the host numbers of the NHN-subnet addresses put on the nhn namespace's
    ``lo``, ``aws_hosts`` those of the AWS-subnet addresses put on the host's end of the
    host link (the first is the host's source address towards the NHN subnet).
    Refuses (RefusedForSafety) when a VPN of this directory still runs. On any failure,
    everything created so far is removed before the error propagates.
    """
    check_tools()
    root = directory.resolve()
    _refuse_if_running(root)
    vpn = _plan(root, tuple(nhn_hosts), tuple(aws_hosts))
    _check_socket_paths(vpn)
    root.mkdir(parents=True, exist_ok=True)
    _save(vpn)  # written first: a crash in the middle still leaves enough for stop_dir
    try:
        return _bring_up(vpn)
    except BaseException as exc:
        try:
            stop_dir(root)
        except Exception as cleanup:  # keep the original error; say what is left
            exc.add_note(f"cleanup after the failed start also failed: {cleanup}")
        raise


def open_vpn(directory: Path) -> VpnLab | None:
    """The VPN recorded in ``directory`` (None when there is none)."""
    try:
        data = json.loads((directory.resolve() / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return _from_json(data)


def stop(vpn: VpnLab) -> None:
    """Stop both daemons by PID and delete both namespaces (their veths, the host link included, go with them)."""
    for side in vpn.sides:
        _stop_charon(side)
    _delete_namespaces(vpn.namespaces)
    _delete_host_link(vpn.host_link)
    (vpn.root / MANIFEST).unlink(missing_ok=True)


def stop_dir(directory: Path) -> None:
    """Stop whatever VPN ``directory`` holds, even one whose start crashed half-way. Idempotent."""
    root = directory.resolve()
    vpn = open_vpn(root)
    if vpn is None:  # no manifest: the names still follow from the directory
        _delete_namespaces(namespace_names(root))
        _delete_host_link(host_link_names(root)[0])
        return
    stop(vpn)


def is_running(vpn: VpnLab) -> bool:
    return any(processes.is_alive(side.tracked) for side in vpn.sides)


def tunnel_down(vpn: VpnLab, name: str) -> None:
    """Take one tunnel down for real and wait until neither daemon reports it.

    The AWS end of its veth goes down (the endpoint is unreachable: nothing can
    re-establish it), then its IKE_SA is deleted on both sides at once rather than
    after dead-peer detection, so the state drorch reads changes deterministically.
    """
    tunnel = vpn.tunnel(name)
    _ip("-n", vpn.aws.namespace, "link", "set", tunnel.aws_link, "down")
    for side in (vpn.aws, vpn.nhn):
        _swanctl(side, "--terminate", "--ike", tunnel.ike_sa, "--force", allow_failure=True)
    _wait(lambda: not any(_states(vpn, [name]).values()), TUNNEL_TIMEOUT_SECONDS, f"{name} to go down")


def tunnel_up(vpn: VpnLab, name: str) -> None:
    """Restore the tunnel's path and let the NHN side initiate it again; wait until it is INSTALLED."""
    tunnel = vpn.tunnel(name)
    _ip("-n", vpn.aws.namespace, "link", "set", tunnel.aws_link, "up")
    _wait(lambda: _link_up(vpn.nhn.namespace, tunnel.nhn_link), 5.0, f"carrier on {tunnel.nhn_link}")
    if not all(_states(vpn, [name]).values()):
        _swanctl(vpn.nhn, "--initiate", "--child", name, "--ike", tunnel.ike_sa, "--timeout", "10",
                 allow_failure=True)  # the wait below reports a failure with the tunnel's state
    wait_installed(vpn, [name], TUNNEL_TIMEOUT_SECONDS)


def wait_installed(vpn: VpnLab, names: Iterable[str], timeout: float) -> None:
    """Wait until every tunnel in ``names`` is up on both sides (OperationFailed with the states after ``timeout``)."""
    wanted = list(names)
    try:
        _wait(lambda: all(_states(vpn, wanted).values()), timeout, "tunnels to be INSTALLED")
    except OperationFailed:
        raise OperationFailed(
            f"tunnels {', '.join(wanted)} not INSTALLED on both sides within {timeout} s: {_describe(vpn, wanted)} "
            f"(logs: {vpn.nhn.directory / 'charon.log'}, {vpn.aws.directory / 'charon.log'})"
        ) from None


def namespace_names(directory: Path) -> tuple[str, str]:
    """(nhn, aws) namespace names: stable per directory, so parallel labs never clash and
    stop_dir finds them even without a manifest; short enough to derive interface names from."""
    tag = _tag(directory.resolve())
    return (f"drv{tag}{SIDES[0]}", f"drv{tag}{SIDES[1]}")


def host_link_names(directory: Path) -> tuple[str, str]:
    """(host end, aws namespace end) of the host link, derived from the directory like the namespaces."""
    tag = _tag(directory.resolve())
    return (f"dv{tag}h", f"dv{tag}x")


def check_tools() -> None:
    """InvalidInput naming the Debian package for each missing tool, before anything is created."""
    missing = [
        f"{what} ({package})"
        for what, package, present in (
            (str(CHARON), "strongswan-charon", CHARON.is_file()),
            (SWANCTL, "strongswan-swanctl", shutil.which(SWANCTL) is not None),
            (str(LIBIPSEC_PLUGIN), "libcharon-extra-plugins", LIBIPSEC_PLUGIN.is_file()),
            (IP, "iproute2", shutil.which(IP) is not None),
            (UNSHARE, "util-linux", shutil.which(UNSHARE) is not None),
        )
        if not present
    ]
    if missing:
        raise InvalidInput("the lab VPN needs: " + ", ".join(missing) + " (apt-get install the packages named)")


# ---------------------------------------------------------------- planning


def _tag(root: Path) -> str:
    return hashlib.sha256(str(root).encode()).hexdigest()[:8]


def _plan(root: Path, nhn_hosts: tuple[int, ...], aws_hosts: tuple[int, ...]) -> VpnLab:
    """Names and addresses: outside /30s in a random 10.X.Y.0/24 (inside the namespaces only),
    the protected subnets a random 172.A.B.0/23 that overlaps no address or route of the host
    (the host routes the NHN half to the aws namespace)."""
    for hosts, what in ((nhn_hosts, "nhn_hosts"), (aws_hosts, "aws_hosts")):
        if not hosts or any(not 1 <= n < ROUTER_HOST for n in hosts) or len(set(hosts)) != len(hosts):
            raise InvalidInput(f"{what} {hosts}: give distinct host numbers from 1 to {ROUTER_HOST - 1}")
    tag = _tag(root)
    outside = f"10.{random.randrange(256)}.{random.randrange(256)}"
    nhn_net, aws_net = _free_subnets()
    tunnels = tuple(
        Tunnel(
            name=f"tunnel-{n}",
            ike_sa=f"ike-{n}",
            nhn_outside=f"{outside}.{4 * (n - 1) + 1}",
            aws_outside=f"{outside}.{4 * (n - 1) + 2}",
            nhn_link=f"dv{tag}n{n}",
            aws_link=f"dv{tag}a{n}",
        )
        for n in range(1, TUNNEL_COUNT + 1)
    )
    nhn_ns, aws_ns = namespace_names(root)
    host_link, aws_host_link = host_link_names(root)
    return VpnLab(
        root, _side(root, "nhn", nhn_ns), _side(root, "aws", aws_ns), tunnels, root / "psk.secret",
        nhn_subnet=str(nhn_net), aws_subnet=str(aws_net),
        nhn_addresses=tuple(str(nhn_net[n]) for n in nhn_hosts),
        host_addresses=tuple(str(aws_net[n]) for n in aws_hosts),
        aws_router=str(aws_net[ROUTER_HOST]), host_link=host_link, aws_host_link=aws_host_link,
    )


def _free_subnets() -> tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]:
    """(NHN /24, AWS /24): the two halves of a random 172.A.B.0/23 the host uses nowhere yet."""
    used = _host_networks()
    for _ in range(500):
        pair = ipaddress.IPv4Network(f"172.{16 + random.randrange(16)}.{2 * random.randrange(128)}.0/23")
        if not any(pair.overlaps(network) for network in used):
            nhn, aws = pair.subnets(new_prefix=24)
            return nhn, aws
    raise OperationFailed("no 172.16.0.0/12 /23 is free of the host's addresses and routes for the lab VPN")


def _host_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the host has an address in or a route to (default routes aside)."""
    found = []
    for line in _run([IP, "-4", "-o", "addr", "show"]).splitlines():
        fields = line.split()
        if "inet" in fields:
            found.append(ipaddress.IPv4Network(fields[fields.index("inet") + 1], strict=False))
    for line in _run([IP, "-4", "route", "show", "table", "all"]).splitlines():
        fields = line.split()
        destination = fields[1] if fields and fields[0] in _ROUTE_KEYWORDS and len(fields) > 1 else (
            fields[0] if fields else "default")
        if destination != "default":
            with contextlib.suppress(ValueError):
                found.append(ipaddress.IPv4Network(destination, strict=False))
    return found


def _side(root: Path, name: str, namespace: str) -> Side:
    directory = root / name
    return Side(name, namespace, directory, directory / "run" / "charon.vici", 0, f"charon@{namespace}")


def _check_socket_paths(vpn: VpnLab) -> None:
    for side in vpn.sides:
        if len(str(side.vici_socket).encode()) > _SOCKET_LIMIT:
            raise InvalidInput(
                f"{side.vici_socket}: longer than the {_SOCKET_LIMIT} bytes a UNIX socket path may have; "
                "use a shorter lab directory"
            )


def _refuse_if_running(root: Path) -> None:
    existing = open_vpn(root)
    live = [side.pid for side in existing.sides if processes.is_alive(side.tracked)] if existing else []
    namespaces = [ns for ns in namespace_names(root) if ns in _namespaces()]
    link = host_link_names(root)[0]
    links = [link] if _link_exists(link) else []
    if live or namespaces or links:
        raise RefusedForSafety(
            f"a lab VPN already runs in {root} (charon PIDs {live}, namespaces {namespaces}, host links {links}); "
            "stop it first (drorch.lab.vpn.stop_dir)"
        )


# ---------------------------------------------------------------- bring-up


def _bring_up(vpn: VpnLab) -> VpnLab:
    started = time.monotonic()
    _create_network(vpn)
    _write_configs(vpn)
    vpn = replace(vpn, nhn=_start_charon(vpn.nhn))
    _save(vpn)
    vpn = replace(vpn, aws=_start_charon(vpn.aws))
    _save(vpn)
    for side in (vpn.aws, vpn.nhn):  # the responder first, so the initiator's first attempt succeeds
        _swanctl(side, "--load-all", "--file", str(side.directory / "swanctl.conf"))
    wait_installed(vpn, vpn.children, max(1.0, START_TIMEOUT_SECONDS - (time.monotonic() - started)))
    return vpn


def _create_network(vpn: VpnLab) -> None:
    """Two namespaces, one veth pair per tunnel (created straight inside them), the NHN addresses on
    the nhn namespace's lo, and the host link with its addresses and the host's route to the NHN subnet."""
    for namespace in vpn.namespaces:
        try:
            _ip("netns", "add", namespace)
        except OperationFailed as exc:
            raise OperationFailed(
                f"cannot create network namespace {namespace}: {exc} "
                "(network namespaces need root, or CAP_SYS_ADMIN and CAP_NET_ADMIN)"
            ) from None
        _ip("-n", namespace, "link", "set", "lo", "up")
    nhn, aws = vpn.namespaces
    for t in vpn.tunnels:
        _ip("link", "add", t.nhn_link, "netns", nhn, "type", "veth", "peer", "name", t.aws_link, "netns", aws)
        for namespace, link, outside in ((nhn, t.nhn_link, t.nhn_outside), (aws, t.aws_link, t.aws_outside)):
            _ip("-n", namespace, "addr", "add", f"{outside}/30", "dev", link)
            _ip("-n", namespace, "link", "set", link, "up")
    for address in vpn.nhn_addresses:
        _ip("-n", nhn, "addr", "add", f"{address}/32", "dev", "lo")
    prefix = ipaddress.ip_network(vpn.aws_subnet).prefixlen
    # the host end is created in the host and its peer straight in the aws namespace: deleting
    # that namespace destroys the pair, with the host's addresses and route on it
    _ip("link", "add", vpn.host_link, "type", "veth", "peer", "name", vpn.aws_host_link, "netns", aws)
    _ip("-n", aws, "addr", "add", f"{vpn.aws_router}/{prefix}", "dev", vpn.aws_host_link)
    _ip("-n", aws, "link", "set", vpn.aws_host_link, "up")
    _run([IP, "netns", "exec", aws, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    for address in vpn.host_addresses:
        _ip("addr", "add", f"{address}/{prefix}", "dev", vpn.host_link)
    _ip("link", "set", vpn.host_link, "up")
    _ip("route", "add", vpn.nhn_subnet, "via", vpn.aws_router, "dev", vpn.host_link, "src", vpn.host_addresses[0])


def _write_configs(vpn: VpnLab) -> None:
    psk = "0x" + secrets.token_hex(32)
    vpn.root.chmod(0o700)
    write_private(vpn.psk_file, psk + "\n")
    for side in vpn.sides:
        (side.directory / "run").mkdir(mode=0o700, parents=True, exist_ok=True)
        (side.directory / "strongswan.conf").write_text(_strongswan_conf(side))
        write_private(side.directory / "swanctl.conf", _swanctl_conf(vpn, side.name, psk))


def _strongswan_conf(side: Side) -> str:
    """The daemon's own config: Debian's plugin set plus kernel-libipsec, logging to stderr (the log file)."""
    return f"""# written by drorch.lab.vpn for side {side.name}
charon {{
    load_modular = yes
    plugins {{
        include /etc/strongswan.d/charon/*.conf
        kernel-libipsec {{
            load = yes
        }}
        # plugins that read or write host files (/etc/ipsec.secrets, /etc/resolv.conf), open extra
        # sockets in /run or touch multicast/ARP: nothing the lab needs, everything it must not leak
{_disabled_plugins()}
    }}
    filelog {{
        stderr {{
            default = 1
            ike_name = yes
            time_format = %Y-%m-%d %H:%M:%S
            flush_line = yes
        }}
    }}
}}
swanctl {{
    load = random openssl pem pkcs1 pkcs8 x509 pubkey
}}
"""


def _disabled_plugins() -> str:
    return "\n".join(f"        {name} {{\n            load = no\n        }}" for name in _DISABLED_PLUGINS)


def _swanctl_conf(vpn: VpnLab, side: str, psk: str) -> str:
    """One IKE_SA with one CHILD_SA per tunnel; the nhn side starts them and restarts them after DPD."""
    lines = ["connections {"]
    for t in vpn.tunnels:
        lines += _connection_lines(vpn, t, side)
    lines += ["}", "secrets {", "    ike-vpn {", f"        secret = {psk}"]
    peers = [address for t in vpn.tunnels for address in (t.nhn_outside, t.aws_outside)]
    lines += [f"        id-{n} = {address}" for n, address in enumerate(peers, 1)]
    lines += ["    }", "}", ""]
    return "\n".join(lines)


def _connection_lines(vpn: VpnLab, t: Tunnel, side: str) -> list[str]:
    local, remote = (t.nhn_outside, t.aws_outside) if side == "nhn" else (t.aws_outside, t.nhn_outside)
    local_ts, remote_ts = (vpn.nhn_subnet, vpn.aws_subnet) if side == "nhn" else (vpn.aws_subnet, vpn.nhn_subnet)
    initiator = side == "nhn"
    return [
        f"    {t.ike_sa} {{",
        "        version = 2",
        f"        local_addrs = {local}",
        f"        remote_addrs = {remote}",
        "        mobike = no",  # a tunnel must never wander onto the other tunnel's addresses
        "        encap = yes",  # libipsec sends ESP in UDP/4500 anyway (TUNNEL-in-UDP even without it): say so
        "        dpd_delay = 5s",
        "        local {",
        "            auth = psk",
        f"            id = {local}",
        "        }",
        "        remote {",
        "            auth = psk",
        f"            id = {remote}",
        "        }",
        "        children {",
        f"            {t.name} {{",
        f"                local_ts = {local_ts}",
        f"                remote_ts = {remote_ts}",
        f"                start_action = {'start' if initiator else 'none'}",
        f"                dpd_action = {'restart' if initiator else 'clear'}",
        "            }",
        "        }",
        "    }",
    ]


def _start_charon(side: Side) -> Side:
    """charon in the side's network namespace and a fresh private mount namespace with its run dir over /run.

    ``ip netns exec``, ``unshare`` and ``bash`` all exec, so the PID started is charon's
    PID; ``exec -a`` names it after its namespace, which processes.is_alive checks.
    """
    run_dir = side.directory / "run"
    _clear_run_dir(side)
    script = 'mount --bind -- "$1" /run && exec -a "$2" "$3"'
    argv = [IP, "netns", "exec", side.namespace, UNSHARE, "--mount", "--propagation", "private", "--",
            "bash", "-ec", script, "drorch-vpn", str(run_dir), side.argv0, str(CHARON)]
    launched = processes.start(side.directory, side.directory, "charon", argv,
                               env={"STRONGSWAN_CONF": str(side.directory / "strongswan.conf")})
    started = replace(side, pid=launched.pid)
    _record(side.directory, started.tracked)
    try:
        _wait(lambda: _charon_ready(started), 10.0, f"charon of {side.name} to open {side.vici_socket}")
    except OperationFailed as exc:
        raise OperationFailed(f"charon of {side.name} did not start ({exc}); its log ends: {_log_tail(side)}") from None
    return started


def _record(run_dir: Path, item: processes.Tracked) -> None:
    """Rewrite the PID file with charon's final argv (the one launched was the namespace wrapper's)."""
    (run_dir / f"{item.name}.pid").write_text(json.dumps({"pid": item.pid, "argv": list(item.argv)}))
    if processes.read(run_dir, item.name) != item:
        raise OperationFailed(f"PID file of {item.name} in {run_dir} does not read back")


def _charon_ready(side: Side) -> bool:
    """Ready when charon wrote its PID (the PID we started) and the VICI socket accepts a query."""
    if not _exists(side.pid):
        raise OperationFailed(f"charon of {side.name} exited")
    try:
        written = int((side.vici_socket.parent / "charon.pid").read_text().strip())
    except (OSError, ValueError):
        return False
    if written != side.pid:
        raise OperationFailed(f"charon of {side.name} runs as PID {written}, not {side.pid}")
    try:
        strongswan.tunnels(side.vici_socket, None, [])
    except OperationFailed:
        return False
    return processes.is_alive(side.tracked)


# ---------------------------------------------------------------- tear-down


def _stop_charon(side: Side) -> None:
    """Stop by recorded PID; if the manifest lacks it (crash during start), charon's own PID file has it."""
    candidates = {side.pid} if side.pid else set()
    with contextlib.suppress(OSError, ValueError):
        candidates.add(int((side.vici_socket.parent / "charon.pid").read_text().strip()))
    for pid in candidates:
        processes.stop(side.directory, replace(side, pid=pid).tracked)
    _clear_run_dir(side)


def _clear_run_dir(side: Side) -> None:
    """Remove what a stopped charon left in its /run (PID file, sockets), so nothing stale is mistaken for live."""
    run_dir = side.vici_socket.parent
    if run_dir.is_dir():
        for item in run_dir.iterdir():
            if not item.is_dir():
                item.unlink(missing_ok=True)


def _delete_namespaces(namespaces: Iterable[str]) -> None:
    """Delete the namespaces; refuse to orphan processes someone else started inside them."""
    present = [ns for ns in namespaces if ns in _namespaces()]
    for namespace in present:
        pids = _run([IP, "netns", "pids", namespace]).split()
        if pids:
            raise OperationFailed(
                f"processes {', '.join(pids)} still run in namespace {namespace}; stop them, then stop the VPN again"
            )
    for namespace in present:
        _ip("netns", "del", namespace)
    _wait(lambda: not set(present) & set(_namespaces()), 5.0, "namespaces to disappear")


def _delete_host_link(link: str) -> None:
    """The host end normally vanishes with the aws namespace (shortly after: the kernel tears it down
    asynchronously); delete it if it lingers, e.g. when the namespace was never created."""
    with contextlib.suppress(OperationFailed):
        _wait(lambda: not _link_exists(link), 2.0, f"{link} to disappear")
        return
    _run([IP, "link", "del", link], allow_failure=True)
    _wait(lambda: not _link_exists(link), 5.0, f"{link} to disappear")


# ---------------------------------------------------------------- helpers


def _states(vpn: VpnLab, names: list[str]) -> dict[tuple[str, str], bool]:
    """(side, tunnel) -> up, as each daemon reports it over VICI."""
    return {
        (side.name, tunnel.name): tunnel.up
        for side in vpn.sides
        for tunnel in strongswan.tunnels(side.vici_socket, None, names)
    }


def _describe(vpn: VpnLab, names: list[str]) -> str:
    try:
        return "; ".join(
            f"{side.name}/{t.name}: {t.ike_state}/{t.child_state}"
            for side in vpn.sides
            for t in strongswan.tunnels(side.vici_socket, None, names)
        )
    except OperationFailed as exc:
        return str(exc)


def _link_exists(link: str) -> bool:
    return Path("/sys/class/net", link).exists()


def _link_up(namespace: str, link: str) -> bool:
    return "LOWER_UP" in _run([IP, "-n", namespace, "link", "show", link])


def _namespaces() -> list[str]:
    return [line.split()[0] for line in _run([IP, "netns", "list"]).splitlines() if line.strip()]


def _ip(*args: str) -> None:
    _run([IP, *args])


def _swanctl(side: Side, *args: str, allow_failure: bool = False) -> None:
    argv = [SWANCTL, *args, "--uri", f"unix://{side.vici_socket}"]
    _run(argv, env={"STRONGSWAN_CONF": str(side.directory / "strongswan.conf")}, allow_failure=allow_failure)


def _run(argv: list[str], env: dict[str, str] | None = None, allow_failure: bool = False) -> str:
    """Run a short command with a timeout; OperationFailed with its output when it fails."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS,
                              env={**os.environ, **(env or {})}, check=False)
    except subprocess.TimeoutExpired:
        raise OperationFailed(f"{' '.join(argv)}: no result within {COMMAND_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0 and not allow_failure:
        output = (done.stderr.strip() or done.stdout.strip()).splitlines()[-3:]
        raise OperationFailed(f"{' '.join(argv)} failed ({done.returncode}): {' / '.join(output)}")
    return done.stdout


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise OperationFailed(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _exists(pid: int) -> bool:
    """The process exists and is not a zombie (its argv changes while the namespace wrappers exec)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _log_tail(side: Side, lines: int = 5) -> str:
    try:
        return " / ".join((side.directory / "charon.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _save(vpn: VpnLab) -> None:
    (vpn.root / MANIFEST).write_text(json.dumps(asdict(vpn), default=str, indent=2) + "\n")


def _from_json(data: dict[str, Any]) -> VpnLab:
    def side(raw: dict[str, Any]) -> Side:
        return Side(raw["name"], raw["namespace"], Path(raw["directory"]), Path(raw["vici_socket"]),
                    int(raw["pid"]), raw["argv0"])

    return VpnLab(
        root=Path(data["root"]),
        nhn=side(data["nhn"]),
        aws=side(data["aws"]),
        tunnels=tuple(Tunnel(**raw) for raw in data["tunnels"]),
        psk_file=Path(data["psk_file"]),
        nhn_subnet=data["nhn_subnet"],
        aws_subnet=data["aws_subnet"],
        nhn_addresses=tuple(data["nhn_addresses"]),
        host_addresses=tuple(data["host_addresses"]),
        aws_router=data["aws_router"],
        host_link=data["host_link"],
        aws_host_link=data["aws_host_link"],
    )
