#!/usr/bin/env python3
"""Writes the committed seed corpora, fuzz/corpus/<target>/seed-*, from the RFC's examples.

Run from anywhere: python3 fuzz/make_seeds.py. Each target's input layout is documented in
its source (fuzz/src/input.rs for the unstructured ones, fuzz/src/script.rs for assembler).
"""

import pathlib
import struct

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"
KEY = bytes([0x37, 0xFA, 0x21, 0x3D])  # the key of RFC 6455 §5.7

FIN, TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x80, 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def mask(payload, key=KEY):
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frame(b0, payload, key=None):
    """A frame with the shortest length form, masked when a key is given."""
    n = len(payload)
    mask_bit = 0x80 if key else 0
    if n < 126:
        head = bytes([b0, mask_bit | n])
    elif n < 65536:
        head = bytes([b0, mask_bit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mask_bit | 127]) + struct.pack(">Q", n)
    return head + (key + mask(payload, key) if key else payload)


def framed(stream, sizes=(), small=False):
    """The layout of fuzz/src/input.rs: count and limit flag, chunk sizes, stream."""
    return bytes([len(sizes) | (0x10 if small else 0), *sizes]) + stream


def close_body(code, reason=b""):
    return struct.pack(">H", code) + reason


# RFC 6455 §5.7 examples, byte for byte.
RFC_UNMASKED_HELLO = frame(FIN | TEXT, b"Hello")
RFC_MASKED_HELLO = frame(FIN | TEXT, b"Hello", KEY)
RFC_FRAGMENTS = frame(TEXT, b"Hel") + frame(FIN | CONT, b"lo")
RFC_PING = frame(FIN | PING, b"Hello")
RFC_MASKED_PONG = frame(FIN | PONG, b"Hello", KEY)
RFC_BINARY_256_HEAD = bytes([0x82, 0x7E, 0x01, 0x00])
RFC_BINARY_64K_HEAD = bytes([0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])

# The PROXY protocol v2 signature (haproxy doc/proxy-protocol.txt §2.2).
PROXY_V2 = b"\r\n\r\n\x00\r\nQUIT\n"

# RFC 6455 §1.3: the client's opening handshake.
RFC_REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


def peer_frames(key):
    """A conversation as a peer sends it: fragments with pings, pong, binary, close."""
    return {
        "hello": frame(FIN | TEXT, b"Hello", key),
        "fragmented-with-pings": frame(TEXT, b"Hel", key)
        + frame(FIN | PING, b"p1", key)
        + frame(CONT, b"l", key)
        + frame(FIN | PING, b"p2", key)
        + frame(FIN | CONT, b"o", key),
        "utf8-split-across-fragments": frame(TEXT, "κό".encode()[:3], key)
        + frame(FIN | CONT, "κόσμε".encode()[3:], key),
        "pong-binary-256": frame(FIN | PONG, b"", key) + frame(FIN | BINARY, bytes(range(256)), key),
        "close-1000-then-ignored": frame(FIN | CLOSE, close_body(1000, b"bye"), key)
        + frame(FIN | TEXT, b"ignored", key),
        "empty-close": frame(FIN | CLOSE, b"", key),
        "invalid-utf8": frame(FIN | TEXT, "κόσμε".encode() + b"\xf4\x90\x80\x80", key),
        "invalid-close-code": frame(FIN | CLOSE, close_body(1005), key),
        "fragmented-ping": frame(PING, b"p", key),
    }


def session_seeds(key, rfc):
    seeds = {f"rfc-{name}": framed(data) for name, data in rfc.items()}
    for name, data in peer_frames(key).items():
        seeds[name] = framed(data)
        seeds[f"{name}-chunked"] = framed(data, sizes=(1, 2, 3, 7))
    seeds["small-limits-1009"] = framed(frame(FIN | BINARY, bytes(150), key), small=True)
    seeds["wrong-masking"] = framed(frame(FIN | TEXT, b"Hello", None if key else KEY))
    return seeds


# The script layout of fuzz/src/script.rs.
KIND = {TEXT: 0, BINARY: 1, CONT: 2, PING: 3, PONG: 4, CLOSE: 5}


def script(frames, client=False, limits=None, sizes=()):
    flags = (1 if client else 0) | (2 if limits else 0)
    out = bytes([flags])
    if limits:
        out += struct.pack(">HH", *limits)
    return out + bytes([len(sizes), *sizes]) + b"".join(frames)


def s_frame(opcode, body, fin=True, wrong_mask=False, rsv=0):
    flags = (0 if fin else 1) | (2 if wrong_mask else 0) | rsv
    return bytes([KIND[opcode], flags]) + KEY + body


def s_bytes(data):
    return bytes([0, len(data)]) + data


def s_close(code, reason=b""):
    return bytes([1]) + struct.pack(">H", code) + bytes([len(reason)]) + reason


def s_fill(byte, length):
    low = length % 65536
    size = (length >> 16) | (2 if low >= 1024 else 0)
    return bytes([3, byte]) + struct.pack(">H", low) + bytes([size])


def s_bare(b0, form, length, wrong_mask=False):
    packed = [bytes([length % 256]), struct.pack(">H", length % 65536), struct.pack(">Q", length)]
    return bytes([7, b0, 2 if wrong_mask else 0]) + KEY + bytes([form]) + packed[form]


def assembler_seeds():
    fragmented = [
        s_frame(TEXT, s_bytes(b"Hel"), fin=False),
        s_frame(PING, s_bytes(b"p1")),
        s_frame(CONT, s_bytes(b"l"), fin=False),
        s_frame(PING, s_bytes(b"p2")),
        s_frame(CONT, s_bytes(b"o")),
    ]
    kosme = "κόσμε".encode()
    return {
        "rfc-fragmented-with-pings": script(fragmented, sizes=(1, 2, 3)),
        "rfc-fragmented-with-pings-client": script(fragmented, client=True, sizes=(5,)),
        "conversation": script(
            [
                s_frame(TEXT, s_bytes(b"Hello")),
                s_frame(PONG, s_bytes(b"")),
                s_frame(BINARY, s_fill(0xAB, 256)),
                s_frame(CLOSE, s_close(1000, b"bye")),
                s_frame(TEXT, s_bytes(b"ignored")),
            ]
        ),
        "utf8-split-across-fragments": script(
            [s_frame(TEXT, s_bytes(kosme[:3]), fin=False), s_frame(CONT, s_bytes(kosme[3:]))],
            sizes=(1,),
        ),
        "invalid-utf8-fails-fast": script(
            [s_frame(TEXT, s_bytes(kosme + b"\xf4\x90"), fin=False), s_frame(CONT, s_bytes(b"x"))]
        ),
        "close-listed-code": script([s_frame(CLOSE, bytes([2, 3, 2]) + b"ok")]),
        "close-invalid-code": script([s_frame(CLOSE, s_close(1004))]),
        "small-limits-1009": script(
            [s_frame(BINARY, s_fill(1, 60), fin=False), s_frame(CONT, s_fill(2, 60))],
            limits=(100, 100),
        ),
        "binary-64k": script([s_frame(BINARY, s_fill(7, 65536 + 10))], client=True),
        "wrong-masking": script([s_frame(TEXT, s_bytes(b"Hello"), wrong_mask=True)]),
        "rsv-and-reserved-opcode": script(
            [s_frame(TEXT, s_bytes(b"x"), rsv=0x40), bytes([6, 0, 0]) + KEY + s_bytes(b"")]
        ),
        "bare-header-top-bit": script([s_bare(0x82, 2, 1 << 63)]),
        "bare-header-16mib": script([s_bare(0x82, 2, (16 << 20) + 1)]),
        "bare-header-control-126": script([s_bare(0x89, 1, 126)]),
    }


def main():
    request_with_frame = RFC_REQUEST + RFC_MASKED_HELLO
    targets = {
        "frame_header": {
            "rfc-unmasked-hello": RFC_UNMASKED_HELLO,
            "rfc-masked-hello": RFC_MASKED_HELLO,
            "rfc-fragment-1": frame(TEXT, b"Hel"),
            "rfc-fragment-2": frame(FIN | CONT, b"lo"),
            "rfc-ping": RFC_PING,
            "rfc-masked-pong": RFC_MASKED_PONG,
            "rfc-binary-256": RFC_BINARY_256_HEAD,
            "rfc-binary-64k": RFC_BINARY_64K_HEAD,
            "masked-64bit": bytes([0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0]) + KEY,
            "close-1000": frame(FIN | CLOSE, close_body(1000), KEY),
            "length-top-bit": bytes([0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        },
        "mask": {
            "rfc-masked-hello": bytes([3]) + struct.pack("<Q", 0) + KEY + bytes([2, 0])
            + mask(b"Hello"),
            "offset-5-long": bytes([1]) + struct.pack("<Q", 5) + KEY + bytes([37, 0])
            + bytes(range(100)),
        },
        "session_server": session_seeds(KEY, {"masked-hello": RFC_MASKED_HELLO}),
        "session_client": session_seeds(
            None,
            {
                "unmasked-hello": RFC_UNMASKED_HELLO,
                "fragments": RFC_FRAGMENTS,
                "ping": RFC_PING,
                "binary-256": RFC_BINARY_256_HEAD + bytes(256),
            },
        ),
        "assembler": assembler_seeds(),
        "handshake": {
            "rfc-1-3-request": framed(RFC_REQUEST),
            "rfc-1-3-request-bytewise": framed(RFC_REQUEST, sizes=(1,)),
            "rfc-1-3-request-small-limits": framed(RFC_REQUEST, small=True),
            "pipelined-frame": framed(request_with_frame, sizes=(5, 17, 3)),
            "version-8": framed(RFC_REQUEST.replace(b"Version: 13", b"Version: 8")),
            "post": framed(RFC_REQUEST.replace(b"GET", b"POST")),
            "query": framed(RFC_REQUEST.replace(b"/chat", b"/chat?user_id=42&token=a%20b+c")),
            "bare-newlines": framed(b"GET /x HTTP/1.1\nHost: a\n\nrest"),
            "healthz": framed(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"),
            # Hostile requests (issue 13): repeated singletons and a declared body are 400;
            # an absolute-form target is routed by its path.
            "two-hosts": framed(RFC_REQUEST.replace(b"Upgrade:", b"Host: evil\r\nUpgrade:", 1)),
            "two-keys": framed(
                RFC_REQUEST.replace(b"Origin:", b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nOrigin:")
            ),
            "two-versions": framed(
                RFC_REQUEST.replace(b"Origin:", b"Sec-WebSocket-Version: 13\r\nOrigin:")
            ),
            "content-length-body": framed(
                RFC_REQUEST.replace(b"Origin:", b"Content-Length: 5\r\nOrigin:") + b"hello"
            ),
            "chunked-body": framed(
                RFC_REQUEST.replace(b"Origin:", b"Transfer-Encoding: chunked\r\nOrigin:")
                + b"5\r\nhello\r\n0\r\n\r\n"
            ),
            "absolute-form": framed(
                RFC_REQUEST.replace(b"GET /chat", b"GET http://server.example.com:80/chat?x=1")
            ),
            "absolute-form-no-path": framed(
                RFC_REQUEST.replace(b"GET /chat", b"GET ws://server.example.com?x")
            ),
        },
        # Raw bytes for `arbitrary` to build a request from; the tail ends up in the fuzzed
        # `raw` field, so whole JSON requests there reach both decoders unchanged.
        "hub_request": {
            "join": b"\x00lobby\x00\x00\x00\x00" + b'{"type":"join","room":"lobby"}',
            "chat": b"\x02r\x00\x01\x07\x00\x00\x00hello"
            + b'{"type":"chat","room":"r","payload":{"a":[1,2]},"id":7}',
            "private": b"\x0342\x00" + b'{"type":"private","recipient_id":"42","payload":"hi"}',
            "publish": b"\x01\x00\x00"
            + b'{"room":"orders-42","type":"notification","payload":{"title":"Shipped"}}',
            "publish-batch": b"\x00\x00\x00"
            + b'{"messages":[{"user_id":"42","payload":1},{"payload":null}]}',
        },
        "proxy_header": {
            "v1-tcp4": framed(b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n"),
            "v1-tcp6-bytewise": framed(b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n", sizes=(1,)),
            "v1-unknown": framed(b"PROXY UNKNOWN\r\n"),
            "v1-too-long": framed(b"PROXY UNKNOWN " + b"x" * 100),
            "v2-tcp4": framed(PROXY_V2 + b"\x21\x11\x00\x0c\xac\x13\x00\x01\xac\x13\x00\x03\xa6\x52\x00\x50GET /"),
            "v2-tcp6-chunked": framed(
                PROXY_V2 + b"\x21\x21\x00\x24" + bytes(range(32)) + b"\x00\x01\x01\xbb", sizes=(3, 13)
            ),
            "v2-local": framed(PROXY_V2 + b"\x20\x00\x00\x00"),
            "v2-tlv": framed(PROXY_V2 + b"\x21\x11\x00\x13" + bytes(12) + b"\x05\x00\x04abcd"),
            "v2-short-address": framed(PROXY_V2 + b"\x21\x11\x00\x08" + bytes(8)),
            "v2-oversized": framed(PROXY_V2 + b"\x21\x11\xff\xff"),
        },
        "utf8": {
            "kosme-split": framed("κόσμε € 𝄞".encode(), sizes=(1, 2, 3)),
            "fail-fast": framed("κόσμε".encode() + b"\xf4\x90\x80\x80", sizes=(10, 1)),
            "ascii": framed(b"Hello"),
            "overlong": framed(b"\xc0\x80"),
            "surrogate": framed(b"\xed\xa0\x80", sizes=(1,)),
            "truncated": framed(b"\xf0\x9d"),
        },
    }
    for target, seeds in targets.items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("seed-*"):
            old.unlink()
        for name, data in seeds.items():
            (folder / f"seed-{name}").write_bytes(data)
        print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
