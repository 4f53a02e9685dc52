"""``simdomain studio``: start the what-if page on this machine.

Binds 127.0.0.1 unless told otherwise; any other host needs a token, which every
request must carry (the printed address holds it). The page reads scenarios only in
the folders of the files given, and writes only to --out.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import socket
import threading
import webbrowser
from pathlib import Path

from simdomain.cliutil import OK
from simdomain.errors import InputError, Problem

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``studio`` subcommand."""
    parser = commands.add_parser("studio", help="open the interactive what-if page",
                                 description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="*", metavar="SCENARIO_OR_TWIN",
                        help="scenario files, twin folders or folders of scenarios "
                             "(default: ./scenarios)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1); others need a token")
    parser.add_argument("--token", help="the token (default: SIMDOMAIN_STUDIO_TOKEN, or a new "
                                        "random one when --host is not loopback)")
    parser.add_argument("--out", default="out/studio", metavar="DIR",
                        help="where runs and saved variants go (default out/studio)")
    parser.add_argument("--workers", type=int, default=2, help="runs at once (default 2)")
    parser.add_argument("--open", action="store_true", help="open the page in a browser")
    parser.set_defaults(command=cmd_studio)


def cmd_studio(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from simdomain.studio.app import create_app
    except ImportError as exc:
        raise InputError([Problem("studio", (), f"needs the studio extra ({exc.name} is "
                                                "missing): pip install 'simdomain[studio]'")])
    from simdomain.studio.workspace import Workspace

    sources = [Path(s) for s in args.sources] or [Path("scenarios")]
    missing = [str(s) for s in sources if not s.exists()]
    if missing:
        raise InputError([Problem(m, (), "no such file or folder") for m in missing])
    if not 1 <= args.workers <= 16:
        raise InputError([Problem("--workers", (), f"expected 1 to 16, got {args.workers}")])
    token = args.token or os.environ.get("SIMDOMAIN_STUDIO_TOKEN")
    loopback = _is_loopback(args.host)
    if not loopback and not token:
        token = secrets.token_urlsafe(24)
    workspace = Workspace(sources, Path(args.out))
    config = uvicorn.Config(None, host=args.host, port=args.port, log_level="warning",
                            lifespan="on")
    sock = _listen(args.host, args.port)  # bound first, so the port is known (--port 0)
    port = sock.getsockname()[1]
    hosts = {f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")} if loopback else None
    config.app = create_app(workspace, token=token, allowed_hosts=hosts, max_running=args.workers)
    shown = "127.0.0.1" if loopback else args.host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    print(f"simdomain studio on {url}  (reads {', '.join(str(r) for r in workspace.roots)}; "
          f"writes {workspace.out}; Ctrl-C stops it)", flush=True)
    if args.open:
        threading.Timer(0.5, webbrowser.open, [url]).start()
    uvicorn.Server(config).run(sockets=[sock])
    return OK


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket; connections made as soon as the address is printed wait."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except (OSError, OverflowError) as exc:
        raise InputError([Problem("--port", (), f"cannot listen on {host}:{port}: "
                                                f"{getattr(exc, 'strerror', None) or exc}")]) from None
    return sock


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

