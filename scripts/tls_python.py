"""wss:// with a client that is not ours: Python `websockets` over an `ssl` context.

Usage: tls_python.py WSS_URL CA_FILE

Checks that (1) with the test CA loaded, `/echo` echoes a text and a 100 kB binary message
(several TLS records) and the close handshake completes with 1000; (2) with the default
context (system roots only) the handshake fails on the certificate. Exits non-zero on any
failure, printing `N passed, N failed`.
"""

import asyncio
import ssl
import sys

import websockets


async def echo(url: str, ca: str) -> None:
    context = ssl.create_default_context(cafile=ca)
    async with websockets.connect(url, ssl=context, max_size=None) as ws:
        await ws.send("hello over TLS from Python")
        assert await ws.recv() == "hello over TLS from Python"
        big = bytes(range(256)) * 400
        await ws.send(big)
        assert await ws.recv() == big
        version = ws.transport.get_extra_info("ssl_object").version()
        print(f"# negotiated {version}")
    assert ws.close_code == 1000, ws.close_code


async def refused(url: str) -> None:
    try:
        async with websockets.connect(url, ssl=ssl.create_default_context(), open_timeout=5):
            pass
    except ssl.SSLCertVerificationError as e:
        print(f"# default context refused: {e.verify_message}")
        return
    raise AssertionError("connected without trusting the test CA")


def main() -> int:
    url, ca = sys.argv[1], sys.argv[2]
    passed = failed = 0
    for name, check in [("echo with the test CA", echo(url, ca)), ("refused without it", refused(url))]:
        try:
            asyncio.run(check)
            passed += 1
            print(f"ok - {name}")
        except Exception as e:  # noqa: BLE001 - any failure is reported and counted
            failed += 1
            print(f"not ok - {name}: {e!r}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
