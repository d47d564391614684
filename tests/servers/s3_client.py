#!/usr/bin/python3
"""s3_client.py - one S3 request signed by botocore (S3SigV4Auth), for
the tests of the S3 fixture: what a correct client sends, or that with
one thing spoiled on purpose.

  s3_client.py --endpoint URL --key AK --secret SK [--token T]
               [--region R] [--unsigned-payload] [--no-auth]
               [--tamper-body] [--body TEXT | --body-bytes N]
               [--header NAME:VALUE]... [--show-headers] [--sha256]
               METHOD PATH [NAME=VALUE...]

PATH is the decoded path (/bucket/key), encoded here as botocore does;
NAME=VALUE pairs make the query. --body-bytes N sends N bytes of a
repeating pattern; --header adds a header (signed). --tamper-body changes the body's first byte after
signing. Prints "HTTP STATUS" on the first line, then with
--show-headers the response's headers and an empty line, then the body,
or with --sha256 the body's length and SHA-256 (for large objects).
Must run with Debian's /usr/bin/python3 (python3-botocore).
"""

import argparse
import hashlib
import http.client
import sys
import types
from urllib.parse import quote, urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def pattern(n):
    block = bytes(range(256)) * 4096
    return (block * (n // len(block) + 1))[:n]


def build(args):
    body = b""
    if args.body is not None:
        body = args.body.encode()
    elif args.body_bytes:
        body = pattern(args.body_bytes)
    params = [tuple(p.split("=", 1)) for p in args.query]
    req = AWSRequest(method=args.method,
                     url=args.endpoint.rstrip("/") + quote(args.path,
                                                           safe="/~"),
                     params=params, data=body,
                     headers=dict(h.split(":", 1) for h in args.header))
    if args.unsigned_payload:
        req.context["client_config"] = types.SimpleNamespace(
            s3={"payload_signing_enabled": False})
    if not args.no_auth:
        creds = Credentials(args.key, args.secret, args.token)
        S3SigV4Auth(creds, "s3", args.region).add_auth(req)
    prepared = req.prepare()
    body = prepared.body or b""
    if args.tamper_body and body:
        body = bytes([body[0] ^ 1]) + body[1:]
    return prepared, body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--key", default="")
    ap.add_argument("--secret", default="")
    ap.add_argument("--token")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--unsigned-payload", action="store_true")
    ap.add_argument("--no-auth", action="store_true")
    ap.add_argument("--tamper-body", action="store_true")
    ap.add_argument("--body")
    ap.add_argument("--body-bytes", type=int, default=0)
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--show-headers", action="store_true")
    ap.add_argument("--sha256", action="store_true")
    ap.add_argument("method")
    ap.add_argument("path")
    ap.add_argument("query", nargs="*")
    args = ap.parse_args()

    prepared, body = build(args)
    url = urlsplit(prepared.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    target = url.path + ("?" + url.query if url.query else "")
    headers = dict(prepared.headers.items())
    if body or args.method == "PUT":
        headers["Content-Length"] = str(len(body))
    conn.request(args.method, target, body=body or None, headers=headers)
    resp = conn.getresponse()
    out = sys.stdout.buffer
    out.write(b"HTTP %d\n" % resp.status)
    if args.show_headers:
        out.write(str(resp.headers).encode())
    if args.sha256:
        digest, n = hashlib.sha256(), 0
        while chunk := resp.read(1 << 16):
            digest.update(chunk)
            n += len(chunk)
        out.write(b"%d %s\n" % (n, digest.hexdigest().encode()))
    else:
        out.write(resp.read())
    out.flush()


if __name__ == "__main__":
    main()
