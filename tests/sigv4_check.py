#!/usr/bin/python3
"""sigv4_check.py FILE - checks src/io/sigv4.c's signatures against botocore's.

Run by tests/test_sigv4.c with Debian's /usr/bin/python3 (python3-botocore).
FILE holds one JSON object per line: a request as given to bh__sigv4_sign()
(decoded path and query, raw extra headers, the body in hex or null for
UNSIGNED-PAYLOAD, credentials, time) and what it returned (target,
amz_date, authorization, the headers to send, the canonical request).

For each request it checks that
  - the target is botocore's own encoding of the decoded path and query
    (its S3 serializer's percent_encode, safe '/~' for the key, '-_.~' for
    query items, items sorted as its signer sorts them): what S3 rebuilds
    from the decoded request;
  - botocore's S3SigV4Auth, given the wire request (the URL built from our
    target, the raw headers, the body, the same credentials and time),
    produces the same Authorization header, byte for byte;
  - the headers botocore signs are exactly those we say to send, with the
    same values;
  - x-amz-date and the payload hash (when a body is given) are right.
Prints the first mismatches with both canonical requests, then
"sigv4_check: checked N requests, M mismatches"; exits 1 on any mismatch.
"""
import datetime
import hashlib
import json
import sys
import types

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode


class FixedClock(datetime.datetime):
    """botocore's add_auth() stamps the request with utcnow() (later
    versions: now(timezone.utc)): this is it."""

    at = None  # naive, UTC

    @classmethod
    def utcnow(cls):
        return cls.at

    @classmethod
    def now(cls, tz=None):
        return cls.at if tz is None else cls.at.replace(
            tzinfo=datetime.timezone.utc).astimezone(tz)


botocore.auth.datetime = types.SimpleNamespace(datetime=FixedClock)


class RecordingAuth(botocore.auth.S3SigV4Auth):
    """Keeps the canonical request it signed, to show it on a mismatch."""

    def canonical_request(self, request):
        self.last_canonical = super().canonical_request(request)
        return self.last_canonical


def expected_target(r):
    path = percent_encode(r["path"], safe="/~")
    items = sorted((percent_encode(k), percent_encode(v)) for k, v in r["query"])
    if not items:
        return path
    return path + "?" + "&".join(f"{k}={v}" for k, v in items)


def botocore_sign(r):
    """Signs the wire request; returns (auth, request)."""
    body = bytes.fromhex(r["body_hex"]) if r["body_hex"] is not None else b""
    req = AWSRequest(method=r["method"], url=r["scheme_host"] + r["ours"]["target"],
                     data=body)
    for name, value in r["headers"]:
        req.headers[name] = value
    # An explicit choice, so that botocore's https + Content-MD5 heuristic
    # does not decide instead.
    signed = r["body_hex"] is not None
    req.context["client_config"] = types.SimpleNamespace(
        s3={"payload_signing_enabled": signed})
    FixedClock.at = datetime.datetime.fromtimestamp(
        r["when"], datetime.timezone.utc).replace(tzinfo=None)
    creds = Credentials(r["access_key"], r["secret_key"], r["token"])
    auth = RecordingAuth(creds, "s3", r["region"])
    auth.add_auth(req)
    return auth, req


def signed_headers(auth, req):
    """The headers botocore signed, as their canonical lines show them (it
    computes the set again from the request, which now has Authorization
    too)."""
    hs = auth.headers_to_sign(req)
    return sorted((k, ",".join(auth._header_value(v) for v in hs.get_all(k)))
                  for k in set(hs) if k != "authorization")


def check(r):
    """A list of what differs (empty when all agree)."""
    bad = []
    want = expected_target(r)
    if r["ours"]["target"] != want:
        bad.append(f"target: ours {r['ours']['target']!r} botocore {want!r}")
    stamp = datetime.datetime.fromtimestamp(
        r["when"], datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if r["ours"]["amz_date"] != stamp:
        bad.append(f"amz_date: ours {r['ours']['amz_date']} want {stamp}")
    if r["body_hex"] is not None:
        h = hashlib.sha256(bytes.fromhex(r["body_hex"])).hexdigest()
        if r["payload_hash"] != h:
            bad.append(f"payload hash: ours {r['payload_hash']} want {h}")
    auth, req = botocore_sign(r)
    if r["ours"]["authorization"] != req.headers["Authorization"]:
        bad.append("authorization:\n  ours     " + r["ours"]["authorization"]
                   + "\n  botocore " + req.headers["Authorization"])
    sent = sorted((k, v) for k, v in r["ours"]["headers"])
    theirs = signed_headers(auth, req)
    if sent != theirs:
        bad.append(f"headers: ours {sent}\n  botocore {theirs}")
    if bad:
        bad.append("canonical request, ours:\n" + r["ours"]["canonical"])
        bad.append("canonical request, botocore's:\n" + auth.last_canonical)
    return bad


SHOWN = 5  # mismatches shown in full


def main(path):
    n = mismatches = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            n += 1
            bad = check(r)
            if bad:
                mismatches += 1
                if mismatches <= SHOWN:
                    print(f"--- request {n - 1}:", *bad, sep="\n")
    print(f"sigv4_check: checked {n} requests, {mismatches} mismatches")
    return 1 if mismatches or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
