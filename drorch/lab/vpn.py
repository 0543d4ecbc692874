"""The lab's site-to-site VPN: two strongSwan daemons in two network namespaces.

It stands in for NHN Cloud's strongSwan VM (namespace side ``nhn``, the initiator)
and an AWS site-to-site VPN (side ``aws``, the responder) with AWS's two tunnels.
Each tunnel is its own IKE_SA + CHILD_SA over its own veth pair, so one can fail
while the other stays up, exactly what drorch must tell apart.

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
"""

from __future__ import annotations

import contextlib
import hashlib
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
    """One of the two tunnels: its IKE_SA and CHILD_SA names, outside (IKE peer) and protected addresses."""

    name: str  # the CHILD_SA name
    ike_sa: str
    nhn_outside: str
    aws_outside: str
    nhn_inside: str
    aws_inside: str
    nhn_link: str  # veth in the nhn namespace
    aws_link: str  # its peer in the aws namespace


@dataclass(frozen=True)
class VpnLab:
    root: Path
    nhn: Side
    aws: Side
    tunnels: tuple[Tunnel, ...]
    psk_file: Path

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


# ---------------------------------------------------------------- public API


def start(directory: Path) -> VpnLab:
    """Start the VPN described above in ``directory`` and wait until both tunnels are INSTALLED.

    Refuses (RefusedForSafety) when a VPN of this directory still runs. On any failure,
    everything created so far is removed before the error propagates.
    """
    check_tools()
    root = directory.resolve()
    _refuse_if_running(root)
    vpn = _plan(root)
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
    """Stop both daemons by PID and delete both namespaces (their veths go with them)."""
    for side in vpn.sides:
        _stop_charon(side)
    _delete_namespaces(vpn.namespaces)
    (vpn.root / MANIFEST).unlink(missing_ok=True)


def stop_dir(directory: Path) -> None:
    """Stop whatever VPN ``directory`` holds, even one whose start crashed half-way. Idempotent."""
    root = directory.resolve()
    vpn = open_vpn(root)
    if vpn is None:  # no manifest: the names still follow from the directory
        _delete_namespaces(namespace_names(root))
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


def _plan(root: Path) -> VpnLab:
    """Names and addresses: outside /30s in a random 10.X.Y.0/24, protected /32s in a random 172.16/12 pair.

    The ranges exist only inside the two namespaces (nothing is routed to the host),
    the randomness just keeps two VPNs' addresses apart in logs and captures.
    """
    tag = _tag(root)
    outside = f"10.{random.randrange(256)}.{random.randrange(256)}"
    inside_a, inside_b = 16 + random.randrange(16), 2 * random.randrange(128)
    tunnels = tuple(
        Tunnel(
            name=f"tunnel-{n}",
            ike_sa=f"ike-{n}",
            nhn_outside=f"{outside}.{4 * (n - 1) + 1}",
            aws_outside=f"{outside}.{4 * (n - 1) + 2}",
            nhn_inside=f"172.{inside_a}.{inside_b}.{n}",
            aws_inside=f"172.{inside_a}.{inside_b + 1}.{n}",
            nhn_link=f"dv{tag}n{n}",
            aws_link=f"dv{tag}a{n}",
        )
        for n in range(1, TUNNEL_COUNT + 1)
    )
    nhn_ns, aws_ns = namespace_names(root)
    return VpnLab(root, _side(root, "nhn", nhn_ns), _side(root, "aws", aws_ns), tunnels, root / "psk.secret")


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
    if live or namespaces:
        raise RefusedForSafety(
            f"a lab VPN already runs in {root} (charon PIDs {live}, namespaces {namespaces}); "
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
    """Two namespaces, one veth pair per tunnel (created straight inside them), protected addresses on lo."""
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
        for namespace, link, outside, inside in ((nhn, t.nhn_link, t.nhn_outside, t.nhn_inside),
                                                 (aws, t.aws_link, t.aws_outside, t.aws_inside)):
            _ip("-n", namespace, "addr", "add", f"{outside}/30", "dev", link)
            _ip("-n", namespace, "addr", "add", f"{inside}/32", "dev", "lo")
            _ip("-n", namespace, "link", "set", link, "up")


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
        lines += _connection_lines(t, side)
    lines += ["}", "secrets {", "    ike-vpn {", f"        secret = {psk}"]
    peers = [address for t in vpn.tunnels for address in (t.nhn_outside, t.aws_outside)]
    lines += [f"        id-{n} = {address}" for n, address in enumerate(peers, 1)]
    lines += ["    }", "}", ""]
    return "\n".join(lines)


def _connection_lines(t: Tunnel, side: str) -> list[str]:
    local, remote = (t.nhn_outside, t.aws_outside) if side == "nhn" else (t.aws_outside, t.nhn_outside)
    local_ts, remote_ts = (t.nhn_inside, t.aws_inside) if side == "nhn" else (t.aws_inside, t.nhn_inside)
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
        f"                local_ts = {local_ts}/32",
        f"                remote_ts = {remote_ts}/32",
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
    )
