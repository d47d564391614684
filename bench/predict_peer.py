#!/usr/bin/env python3
"""predict_peer.py - the main job's per-row work the way a Python user would
write it without a hive: bench/bench_predict.c runs it as the peer.

  predict_peer.py DATA_DIR file  file://DIR/          ROWS 1
  predict_peer.py DATA_DIR http  http://HOST/PATH/    ROWS INFLIGHT
  predict_peer.py DATA_DIR s3    http://ENDPOINT/BUCKET/PATH/ ROWS INFLIGHT REGION

Row i (cycling the dataset's 1,797 rows) is PREFIX + digit-NNNNN.pgm, an
8x8 binary PGM. Each row is read, decoded, put through the 64x10 model of
DATA_DIR/digits_model.txt (pure Python: Debian's python3 has no numpy by
default) and formatted as a CSV line; the lines are written in row order
to /dev/null. Files: a plain loop. http: asyncio with one aiohttp session,
INFLIGHT requests at once (as many connections). s3: the same, each GET
signed by botocore's S3 SigV4 signer with AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY. Prints "rows_per_s R", timed from the first read to
the last line.
"""
import asyncio
import math
import os
import sys
import time

NROWS = 1797


def load_model(path):
    bias, weights = None, {}
    with open(path) as f:
        for line in f:
            w = line.split()
            if not w or w[0].startswith("#"):
                continue
            if w[0] == "bias":
                bias = [float(v) for v in w[1:]]
            elif w[0] == "weights":
                weights[int(w[1])] = [float(v) for v in w[2:]]
    return bias, [weights[k] for k in range(len(bias))]


def decode(img):
    parts = img.split(maxsplit=4)
    if parts[0] != b"P5" or int(parts[1]) != 8 or int(parts[2]) != 8:
        raise ValueError("not an 8x8 P5 image")
    maxval = int(parts[3])
    px = img[-64:]
    return [p / maxval for p in px]


def line(model, i, img):
    bias, weights = model
    x = decode(img)
    z = [b + sum(wj * xj for wj, xj in zip(w, x)) for b, w in zip(bias, weights)]
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    k = max(range(len(e)), key=lambda c: (e[c], -c))
    return "%d,%d,%.6f\n" % (i, k, e[k] / s)


def url(prefix, i):
    return "%sdigit-%05d.pgm" % (prefix, i % NROWS)


def files(model, prefix, rows):
    out = []
    for i in range(rows):
        with open(url(prefix, i)[len("file://"):], "rb") as f:
            out.append(line(model, i, f.read()))
    return out


async def fetch_all(model, prefix, rows, inflight, sign):
    import aiohttp

    out = [None] * rows
    nxt = 0

    async def one(session):
        nonlocal nxt
        while nxt < rows:
            i, nxt = nxt, nxt + 1
            u = url(prefix, i)
            async with session.get(u, headers=sign(u)) as r:
                if r.status != 200:
                    raise RuntimeError("HTTP %d (GET %s)" % (r.status, u))
                out[i] = line(model, i, await r.read())

    conn = aiohttp.TCPConnector(limit=inflight)
    async with aiohttp.ClientSession(connector=conn) as session:
        await asyncio.gather(*(one(session) for _ in range(inflight)))
    return out


def s3_signer(region):
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"],
                        os.environ["AWS_SECRET_ACCESS_KEY"])
    auth = S3SigV4Auth(creds, "s3", region)

    def sign(u):
        req = AWSRequest(method="GET", url=u)
        auth.add_auth(req)
        return {k: v for k, v in req.headers.items()}
    return sign


def main():
    data, mode, prefix, rows, inflight = sys.argv[1:6]
    rows, inflight = int(rows), int(inflight)
    model = load_model(os.path.join(data, "digits_model.txt"))
    t0 = time.monotonic()
    if mode == "file":
        out = files(model, prefix, rows)
    else:
        sign = s3_signer(sys.argv[6]) if mode == "s3" else (lambda u: None)
        out = asyncio.run(fetch_all(model, prefix, rows, inflight, sign))
    with open(os.devnull, "w") as f:
        f.writelines(out)
    print("rows_per_s %.1f" % (rows / (time.monotonic() - t0)))


if __name__ == "__main__":
    main()
