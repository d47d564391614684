#!/usr/bin/python3
"""s3_proxy.py - an S3 front that checks AWS Signature V4 as S3 does, for
the tests: s3rver (the store behind it) takes any V4 signature, so a
client's signing mistakes would pass unseen without this proxy.

Each request's Authorization header is parsed (Credential, SignedHeaders,
Signature), the secret looked up by access key id in the keys file, the
request rebuilt from the wire (method, path and query as received, the
values of the signed headers) and signed again with botocore's own
S3SigV4Auth for the x-amz-date timestamp; the signatures must match, the
date be within 15 minutes, x-amz-content-sha256 match the body unless
UNSIGNED-PAYLOAD. Failures get S3's status and XML error body. Good
requests go to the upstream with the answer streamed back.

  s3_proxy.py --upstream http://127.0.0.1:PORT --keys FILE [--port 0]
              [--host 127.0.0.1] [--region us-east-1] [-v]

Keys file: one "ACCESS_KEY SECRET [SESSION_TOKEN]" a line, '#' comments;
a key given a token accepts only requests that carry it.
Prints "listening on HOST:PORT" on stdout once it accepts connections.
GET /__proxy/stats answers (without auth) JSON counts: connections
accepted (the stats query's own included), requests, accepted, rejected,
rejections by error code, and responses cut (the client left before the
end of the body: "cut", and their body bytes sent, "cut_bytes").
GET /__proxy/throttle?rate=N (without auth) makes every response body from
then on leave at N bytes a second at most, a chunk of 64 KiB at a time (a
slow network, for tests that cancel a transfer midway); 0 lifts it.

Must run with Debian's /usr/bin/python3 (python3-aiohttp, python3-botocore;
python3-uvloop, if there, makes it faster).
"""

import argparse
import asyncio
import datetime
import hashlib
import hmac
import json
import sys
import tempfile
import uuid
from urllib.parse import quote, unquote, unquote_plus
from xml.sax.saxutils import escape

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web
from botocore.auth import S3SigV4Auth, SIGV4_TIMESTAMP
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from yarl import URL

SKEW = datetime.timedelta(minutes=15)
SPOOL_IN_MEMORY = 1 << 20  # larger hashed bodies wait on disk
CHUNK = 1 << 16
UPSTREAM_IDLE = 3.0  # seconds
# Not forwarded either way: they describe one hop, not the message.
HOP = {"connection", "keep-alive", "proxy-authenticate",
       "proxy-authorization", "te", "trailer", "transfer-encoding",
       "upgrade", "expect", "host"}
# Not forwarded upstream: the proxy has checked them; s3rver, given no
# Authorization, serves the request anonymously.
AUTH = {"authorization", "x-amz-security-token"}


class S3Reject(Exception):
    """An S3 error answer: status, code, message and extra XML elements."""

    def __init__(self, status, code, message, **extra):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.extra = extra


def error_response(err, request_id):
    extra = "".join(f"<{k}>{escape(str(v))}</{k}>"
                    for k, v in err.extra.items())
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{err.code}</Code>"
            f"<Message>{escape(err.message)}</Message>{extra}"
            f"<RequestId>{request_id}</RequestId>"
            f"<HostId>{request_id}</HostId></Error>")
    return web.Response(status=err.status, body=body.encode(),
                        content_type="application/xml",
                        headers={"x-amz-request-id": request_id})


class WireSigV4(S3SigV4Auth):
    """botocore's S3 signer fed the headers the client named as signed,
    with their values as received (botocore alone would skip some names,
    such as user-agent, and add host)."""

    def __init__(self, credentials, region, signed):
        super().__init__(credentials, "s3", region)
        self._signed = signed

    def headers_to_sign(self, request):
        return self._signed


def parse_authorization(value):
    """(access key, date, region, service, signed header names, signature)
    from an AWS4-HMAC-SHA256 Authorization header value."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        raise S3Reject(400, "InvalidArgument", "Unsupported Authorization Type",
                       ArgumentName="Authorization", ArgumentValue=value)
    parts = {}
    for item in rest.split(","):
        name, eq, val = item.strip().partition("=")
        if not eq or name in parts:
            break
        parts[name] = val
    if set(parts) != {"Credential", "SignedHeaders", "Signature"}:
        raise S3Reject(400, "AuthorizationHeaderMalformed",
                       "The authorization header is malformed; the "
                       "authorization header requires three components: "
                       "Credential, SignedHeaders, and Signature.")
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise S3Reject(400, "AuthorizationHeaderMalformed",
                       "The authorization header is malformed; the Credential "
                       "is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/"
                       "REGION/SERVICE/aws4_request\".")
    signed = parts["SignedHeaders"].split(";")
    return scope[0], scope[1], scope[2], scope[3], signed, parts["Signature"]


def canonical_params(raw_query):
    """The query's (name, value) pairs, decoded once as S3 decodes them;
    botocore encodes them again into the canonical query string."""
    if not raw_query:
        return []
    pairs = []
    for item in raw_query.split("&"):
        name, _, val = item.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(val)))
    return pairs


class Verifier:
    def __init__(self, keys, region):
        self.keys = keys  # access key -> (secret, token or None)
        self.region = region

    def check(self, request):
        """Raises S3Reject unless `request` carries a good signature.
        Returns the x-amz-content-sha256 value the body must match."""
        auth = request.headers.get("Authorization")
        if auth is None:
            if "X-Amz-Algorithm" in request.query:
                raise S3Reject(501, "NotImplemented",
                               "This proxy does not verify presigned URLs.")
            raise S3Reject(403, "AccessDenied", "Access Denied")
        akid, day, region, service, signed, sig = parse_authorization(auth)
        secret, token = self.lookup(akid, request)
        amz_date = self.check_date(request, day)
        self.check_scope(region, service)
        content_sha = self.check_signed_set(request, signed)
        signer, aws = self.rebuild(request, Credentials(akid, secret, token),
                                   region, signed, amz_date)
        canonical = signer.canonical_request(aws)
        string_to_sign = signer.string_to_sign(aws, canonical)
        want = signer.signature(string_to_sign, aws)
        if not hmac.compare_digest(want, sig):
            raise S3Reject(
                403, "SignatureDoesNotMatch",
                "The request signature we calculated does not match the "
                "signature you provided. Check your key and signing method.",
                AWSAccessKeyId=akid, StringToSign=string_to_sign,
                SignatureProvided=sig, CanonicalRequest=canonical)
        return content_sha

    def lookup(self, akid, request):
        if akid not in self.keys:
            raise S3Reject(403, "InvalidAccessKeyId",
                           "The AWS Access Key Id you provided does not exist "
                           "in our records.", AWSAccessKeyId=akid)
        secret, token = self.keys[akid]
        given = request.headers.get("x-amz-security-token")
        if token is not None and given is None:
            raise S3Reject(403, "InvalidAccessKeyId",
                           "The AWS Access Key Id you provided does not exist "
                           "in our records.", AWSAccessKeyId=akid)
        if token is not None and given != token:
            raise S3Reject(400, "InvalidToken",
                           "The provided token is malformed or otherwise "
                           "invalid.")
        return secret, token

    def check_date(self, request, day):
        amz_date = request.headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(amz_date, SIGV4_TIMESTAMP)
        except ValueError:
            raise S3Reject(403, "AccessDenied",
                           "AWS authentication requires a valid Date or "
                           "x-amz-date header") from None
        now = datetime.datetime.utcnow()
        if abs(now - when) > SKEW:
            raise S3Reject(403, "RequestTimeTooSkewed",
                           "The difference between the request time and the "
                           "current time is too large.", RequestTime=amz_date,
                           ServerTime=now.strftime(SIGV4_TIMESTAMP),
                           MaxAllowedSkewMilliseconds=900000)
        if day != amz_date[:8]:
            raise S3Reject(400, "AuthorizationHeaderMalformed",
                           "The authorization header is malformed; Invalid "
                           "credential date. Date is not the same as "
                           "X-Amz-Date.")
        return amz_date

    def check_scope(self, region, service):
        if region != self.region:
            raise S3Reject(400, "AuthorizationHeaderMalformed",
                           "The authorization header is malformed; the region "
                           f"'{region}' is wrong; expecting '{self.region}'",
                           Region=self.region)
        if service != "s3":
            raise S3Reject(400, "AuthorizationHeaderMalformed",
                           "The authorization header is malformed; incorrect "
                           f"service \"{service}\". This endpoint belongs to "
                           "\"s3\".")

    def check_signed_set(self, request, signed):
        """S3 wants host and every x-amz-* header present signed, and an
        x-amz-content-sha256 it can use."""
        present = {k.lower() for k in request.headers}
        unsigned = sorted(h for h in present
                          if (h == "host" or h.startswith("x-amz-"))
                          and h not in signed)
        if unsigned:
            raise S3Reject(403, "AccessDenied",
                           "There were headers present in the request which "
                           "were not signed",
                           HeadersNotSigned=", ".join(unsigned))
        missing = [h for h in signed if h not in present]
        if missing:
            raise S3Reject(403, "SignatureDoesNotMatch",
                           "The request signature we calculated does not "
                           "match the signature you provided: signed headers "
                           f"missing from the request: {', '.join(missing)}")
        sha = request.headers.get("x-amz-content-sha256")
        if sha is None:
            raise S3Reject(400, "InvalidRequest",
                           "Missing required header for this request: "
                           "x-amz-content-sha256")
        if sha.startswith("STREAMING-"):
            raise S3Reject(501, "NotImplemented",
                           "This proxy does not take aws-chunked uploads.")
        if sha != "UNSIGNED-PAYLOAD" and (
                len(sha) != 64 or any(c not in "0123456789abcdef"
                                      for c in sha)):
            raise S3Reject(400, "InvalidArgument",
                           "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                           "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid "
                           "sha256 value.", ArgumentName="x-amz-content-sha256",
                           ArgumentValue=sha)
        return sha

    @staticmethod
    def rebuild(request, creds, region, signed, amz_date):
        """The signer and the request as received, for botocore's
        canonicalisation. The raw path is decoded once and encoded again as
        S3 does (every byte but the unreserved ones and '/'), the raw query
        likewise (canonical_params): a client must sign what S3 will
        compute, whatever its own escaping on the wire."""
        raw_path, _, raw_query = request.raw_path.partition("?")
        headers = HTTPHeaders()
        for name in signed:
            for value in request.headers.getall(name):
                headers[name] = value
        aws = AWSRequest(method=request.method,
                         url="http://proxy" + quote(unquote(raw_path), safe="/~"),
                         headers={"X-Amz-Content-SHA256":
                                  request.headers["x-amz-content-sha256"]},
                         params=canonical_params(raw_query))
        aws.context["timestamp"] = amz_date
        return WireSigV4(creds, region, headers), aws


class Stats:
    def __init__(self):
        self.connections = 0
        self.requests = 0
        self.accepted = 0
        self.rejected = 0
        self.codes = {}
        self.cut = 0
        self.cut_bytes = 0

    def reject(self, code):
        self.rejected += 1
        self.codes[code] = self.codes.get(code, 0) + 1

    def json(self):
        return json.dumps({"connections": self.connections,
                           "requests": self.requests,
                           "accepted": self.accepted,
                           "rejected": self.rejected,
                           "codes": self.codes,
                           "cut": self.cut,
                           "cut_bytes": self.cut_bytes})


class CountingServer(web.Server):
    """aiohttp's low-level server, counting the connections it accepts,
    and telling of their loss (lost_future)."""

    def __init__(self, handler, stats, **kwargs):
        super().__init__(handler, **kwargs)
        self._stats = stats
        self._lost = {}  # connection (its RequestHandler) -> future

    def connection_made(self, handler, transport):
        self._stats.connections += 1
        super().connection_made(handler, transport)

    def connection_lost(self, handler, exc):
        lost = self._lost.pop(handler, None)
        if lost is not None and not lost.done():
            lost.set_result(None)
        super().connection_lost(handler, exc)

    def lost_future(self, request):
        """A future done when the request's connection is lost. aiohttp
        3.8 does not cancel the handler then, and a throttled response
        would notice only at its next write, a pause later."""
        lost = self._lost.get(request.protocol)
        if lost is None:
            lost = asyncio.get_running_loop().create_future()
            if request.transport is None:  # lost already
                lost.set_result(None)
            else:
                self._lost[request.protocol] = lost
        return lost


class Proxy:
    def __init__(self, args, keys):
        self.upstream = args.upstream.rstrip("/")
        self.verifier = Verifier(keys, args.region)
        self.verbose = args.verbose
        self.stats = Stats()
        self.session = None
        self.server = None  # the CountingServer
        self.rate = 0  # body bytes a second; 0: no limit

    async def start(self):
        # One keep-alive pool to the store; no limit: the clients set it.
        # s3rver (node's http) closes a connection idle for 5 s: drop ours
        # sooner, or a request could go out on one it is closing.
        self.session = ClientSession(
            connector=TCPConnector(limit=0, keepalive_timeout=UPSTREAM_IDLE),
            auto_decompress=False, timeout=ClientTimeout(total=None))

    async def handle(self, request):
        if request.raw_path == "/__proxy/stats":
            return web.Response(text=self.stats.json(),
                                content_type="application/json")
        if request.path == "/__proxy/throttle":
            self.rate = int(request.query.get("rate", "0"))
            return web.Response(text=json.dumps({"rate": self.rate}),
                                content_type="application/json")
        self.stats.requests += 1
        request_id = uuid.uuid4().hex[:16].upper()
        try:
            sha = self.verifier.check(request)
            data, spool = await self.read_body(request, sha)
        except S3Reject as err:
            self.stats.reject(err.code)
            print(f"s3_proxy: {request.method} {request.raw_path}: "
                  f"{err.code}: {err.message}", file=sys.stderr, flush=True)
            return error_response(err, request_id)
        self.stats.accepted += 1
        if self.verbose:
            print(f"s3_proxy: {request.method} {request.raw_path}: ok",
                  file=sys.stderr, flush=True)
        return await self.forward(request, data, spool)

    async def read_body(self, request, sha):
        """(what to forward, the spool file to close after, or None)"""
        if request.headers.get("Transfer-Encoding", "").lower() == "chunked" \
                or (request.method == "PUT" and
                    request.content_length is None):
            raise S3Reject(411, "MissingContentLength",
                           "You must provide the Content-Length HTTP header.")
        if not request.content_length:
            check_sha(sha, hashlib.sha256(b"").hexdigest())
            return None, None
        # S3 answers 100 Continue once it has checked the headers.
        if request.headers.get("Expect", "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if sha == "UNSIGNED-PAYLOAD":
            return request.content, None
        spool, got = await self.spool(request)
        try:
            check_sha(sha, got)
        except S3Reject:
            spool.close()
            raise
        return read_spool(spool), spool

    @staticmethod
    async def spool(request):
        """The body in a file (in memory while small) and its SHA-256: the
        hash must be checked before any byte reaches the store."""
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        digest = hashlib.sha256()
        async for chunk in request.content.iter_chunked(CHUNK):
            digest.update(chunk)
            spool.write(chunk)
        spool.seek(0)
        return spool, digest.hexdigest()

    async def forward(self, request, data, spool):
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in HOP and k.lower() not in AUTH}
        # encoded=True: the path and query go on as received, unchanged.
        url = URL(self.upstream + request.raw_path, encoded=True)
        try:
            async with self.session.request(
                    request.method, url, headers=headers, data=data,
                    allow_redirects=False,
                    skip_auto_headers=("User-Agent", "Content-Type",
                                       "Accept", "Accept-Encoding")) as up:
                return await self.stream_back(request, up)
        except ClientError as err:
            return error_response(S3Reject(500, "InternalError",
                                           f"the store failed: {err!r}"),
                                  uuid.uuid4().hex[:16].upper())
        finally:
            if spool is not None:
                spool.close()

    async def stream_back(self, request, up):
        resp = web.StreamResponse(status=up.status, reason=up.reason)
        for name, value in up.headers.items():
            if name.lower() not in HOP:
                resp.headers.add(name, value)
        sent = 0
        lost = self.server.lost_future(request) if self.rate > 0 else None
        try:
            await resp.prepare(request)
            if request.method != "HEAD":
                async for chunk in up.content.iter_chunked(CHUNK):
                    await resp.write(chunk)
                    sent += len(chunk)
                    if lost is not None:
                        await pause(lost, len(chunk) / self.rate)
            await resp.write_eof()
        except ConnectionResetError:
            # The client left (a benchmark's end, a cancelled transfer):
            # nobody to answer.
            self.count_cut(sent, up.content_length)
        except asyncio.CancelledError:
            # aiohttp from 3.9 may cancel the handler of a lost connection.
            self.count_cut(sent, up.content_length)
            raise
        return resp

    def count_cut(self, sent, length):
        # A client that had the whole body and then left (its process
        # ended) while the throttle paused after the last chunk did not
        # cut the response.
        if length is not None and sent >= length:
            return
        self.stats.cut += 1
        self.stats.cut_bytes += sent


async def pause(lost, seconds):
    """Waits `seconds`, or raises ConnectionResetError as soon as the
    client leaves."""
    await asyncio.wait({lost}, timeout=seconds)
    if lost.done():
        raise ConnectionResetError("the client left")


def check_sha(sha, got):
    if sha != "UNSIGNED-PAYLOAD" and got != sha:
        raise S3Reject(400, "XAmzContentSHA256Mismatch",
                       "The provided 'x-amz-content-sha256' header does not "
                       "match what was computed.",
                       ClientComputedContentSHA256=sha,
                       S3ComputedContentSHA256=got)


async def read_spool(spool):
    while True:
        chunk = spool.read(CHUNK)
        if not chunk:
            return
        yield chunk


def load_keys(path):
    keys = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            if len(words) in (2, 3):
                keys[words[0]] = (words[1],
                                  words[2] if len(words) == 3 else None)
    return keys


async def serve(args):
    proxy = Proxy(args, load_keys(args.keys))
    await proxy.start()
    server = CountingServer(proxy.handle, proxy.stats,
                            access_log=None, keepalive_timeout=300)
    proxy.server = server
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(server, args.host, args.port,
                                        backlog=1024)
    host, port = listener.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    await asyncio.Event().wait()  # until killed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--keys", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    try:
        import uvloop  # python3-uvloop: a third more requests a second
        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
