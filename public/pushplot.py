"""pushplot: send numbers to a pushplot server from Python, without holding up the job.

One file, Python 3.8 or later, standard library only. Get it from your own server, so that it
matches that server's API:

    curl -fsS "$PUSHPLOT_URL/pushplot.py" -o pushplot.py

Use:

    from pushplot import Pushplot
    pp = Pushplot()                       # PUSHPLOT_URL and PUSHPLOT_KEY from the environment
    pp = Pushplot("https://pushplot.example.com", "pp_...")   # or given

    pp.observe("page.ms", 42.5, site="shop")   # a measurement: read with agg=avg, min, max, count
    pp.inc("rows.imported", 500)               # a counter: read with agg=sum (per bucket)
    pp.gauge("queue.depth", 17)                # a level: read with agg=last

    with pp.run("backup"):                     # a job run: start, then success or failure
        do_backup()

    @pp.run("nightly.report")                  # the same, as a decorator
    def report(): ...

What happens to the numbers:

- Every call is folded in memory, per chart, labels and `bucket` seconds (default 10), into one
  point that keeps count, sum, min, max and the last value (a pre-aggregated point). The server
  merges it into its bucket exactly as it would merge every single value, so agg=avg, min, max,
  count and sum read the same as if each value had been sent. Choose `bucket` so that it divides
  the chart's bucket size (60 s unless the chart says otherwise).
- `observe`, `inc` and `gauge` fold the same way and differ in how a chart is read:
  `observe` is a distribution (avg, min, max, count are exact); `inc(chart, n)` is a counter,
  each call one increment of n, so agg=sum is the increments per bucket and agg=count the calls;
  `gauge` is a level, so agg=last is its latest value in each bucket (min and max still show how
  far it moved, and avg is the plain mean of the values set). A gauge is sent only for buckets in
  which it was set: nothing is carried forward.
- Points are sent from a daemon thread every `interval` seconds (default 10), sooner when more than
  `max_pending` points wait (default 1,000), on `pp.flush()` and when the interpreter exits.
- Sending never raises into your code and never blocks it: each request has a `timeout` (5 s) and
  up to `tries` (3) tries, with exponential backoff and jitter, honouring Retry-After on 429 and
  503. Points that could not be sent go to a spool file (`$XDG_CACHE_HOME/pushplot/spool.jsonl`,
  else `~/.cache/pushplot/spool.jsonl`; at most `spool_bytes`, the oldest dropped first with a
  warning), which the next flush, of this process or a later one, sends first. At exit the
  client waits at most `timeout` seconds in all, then spools what is left.
- An answer that retrying cannot fix (a 4xx such as a bad key or a bad chart name) is logged once
  and those points are dropped; a batch refused for one bad point is sent again without it.
- A request whose answer never came (a timeout after it was sent, or 503 write_unconfirmed) may
  have been stored: it is sent again, so in that rare case its points can count twice. A refused
  connection (server down) never stored anything, and a spooled point is sent by one flush only.
- Job pings (`run`) are sent in order by the same thread, with the same retries, but never
  spooled: a ping that arrives hours late would tell the wrong story.
- Logging goes to the `pushplot` logger, silent unless your program configures logging.
"""

import atexit
import email.utils
import functools
import json
import logging
import math
import os
import random
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid

try:
    import fcntl
except ImportError:  # Windows: the spool is used without a lock between processes.
    fcntl = None

__all__ = ["Pushplot"]
__version__ = "1"

log = logging.getLogger("pushplot")
log.addHandler(logging.NullHandler())

# Points per request: well inside the server's MAX_BATCH (10,000) and its 1 MiB body.
_CHUNK = 1000


def _default_spool():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pushplot", "spool.jsonl")


class _Failed(Exception):
    """A request that did not get through after its tries, or ran out of time: spool it."""


class _Refused(Exception):
    """An answer that sending again cannot change (a 4xx): drop it."""

    def __init__(self, status, code, message, index):
        super().__init__("HTTP %s %s: %s" % (status, code, message))
        self.status = status
        self.code = code
        self.index = index


class Pushplot:
    """A pushplot client. Thread-safe; one per process is enough.

    url, key: the server and an ingest key (default: PUSHPLOT_URL, PUSHPLOT_KEY). Without a URL
    the client does nothing and says so once in the log.
    """

    def __init__(self, url=None, key=None, *, bucket=10, interval=10.0, max_pending=1000,
                 timeout=5.0, tries=3, spool=None, spool_bytes=1 << 20, max_retry_after=60.0):
        self.url = (url or os.environ.get("PUSHPLOT_URL") or "").rstrip("/")
        self.key = key or os.environ.get("PUSHPLOT_KEY") or ""
        self.bucket = max(float(bucket), 0.001)
        self.interval = max(float(interval), 0.05)
        self.max_pending = max(int(max_pending), 1)
        self.timeout = max(float(timeout), 0.01)
        self.tries = max(int(tries), 1)
        self.spool = _default_spool() if spool is None else spool
        self.spool_bytes = int(spool_bytes)
        self.max_retry_after = float(max_retry_after)
        self._lock = threading.Lock()  # guards _pending and _pings
        self._send_lock = threading.Lock()  # one flush at a time
        self._pending = {}
        self._pings = []
        self._told = set()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._deadline = None  # when closing: the time by which everything is sent or spooled
        self._closed = False
        if not self.url:
            self._once("no-url", "pushplot: no URL given and PUSHPLOT_URL is not set; sending nothing")
            self._thread = None
            return
        self._thread = threading.Thread(target=self._loop, name="pushplot", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # -- what a program calls ----------------------------------------------------------------

    def observe(self, chart, value, **labels):
        """A measurement (a duration, a size): folded into count, sum, min, max and last."""
        self._fold(chart, value, labels)

    def inc(self, chart, n=1, **labels):
        """A counter: adds n (default 1). Read the chart with agg=sum: increments per bucket."""
        self._fold(chart, n, labels)

    def gauge(self, chart, value, **labels):
        """A level (a queue depth, a temperature): read the chart with agg=last."""
        self._fold(chart, value, labels)

    def run(self, job):
        """A job run, as `with pp.run("backup"):` or as the decorator `@pp.run("backup")`: sends the
        start ping, then success, or failure with the exception's summary as the run's message."""
        return _Run(self, job)

    def flush(self, timeout=None):
        """Sends everything waiting now (the spool first), in the caller's thread, for at most
        `timeout` seconds (default: `timeout` times `tries`); what is not sent by then goes to the
        spool. If another flush is still sending, this one leaves the points to the next."""
        try:
            if timeout is None:
                timeout = self.timeout * self.tries
            deadline = time.monotonic() + timeout
            if self._send_lock.acquire(timeout=max(timeout, 0)):
                try:
                    self._flush_locked(deadline)
                finally:
                    self._send_lock.release()
        except Exception:  # never into the caller
            log.exception("pushplot: flush failed")

    def close(self):
        """Sends what waits, within `timeout` seconds in all, spools the rest and stops the thread.
        Called at exit by itself."""
        if self._closed or self._thread is None:
            return
        self._closed = True
        try:
            self._deadline = time.monotonic() + self.timeout
            self._closing.set()
            self._wake.set()
            # The thread's own flush ends by the deadline too (each try is bounded by it).
            if self._send_lock.acquire(timeout=self.timeout + 1.0):
                try:
                    self._flush_locked(self._deadline)
                finally:
                    self._send_lock.release()
            else:
                self._spool_points(self._take_pending())
        except Exception:
            log.exception("pushplot: close failed")
        try:
            atexit.unregister(self.close)
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- folding -------------------------------------------------------------------------------

    def _fold(self, chart, value, labels):
        try:
            if self._closed or self._thread is None:
                return
            v = float(value)
            if not math.isfinite(v):
                self._once(("nan", chart), "pushplot: %r got %r, which is not a finite number; ignored", chart, value)
                return
            now = time.time()
            key = (str(chart), _labels_key(labels), math.floor(now / self.bucket))
            with self._lock:
                p = self._pending.get(key)
                if p is None:
                    self._pending[key] = [1, v, v, v, v, now]
                    if len(self._pending) > self.max_pending:
                        self._wake.set()
                else:
                    p[0] += 1
                    p[1] += v
                    if v < p[2]:
                        p[2] = v
                    if v > p[3]:
                        p[3] = v
                    if now >= p[5]:
                        p[4] = v
                        p[5] = now
        except Exception:
            self._once(("fold", chart), "pushplot: could not record %r for %r", value, chart, exc_info=True)

    def _take_pending(self):
        with self._lock:
            pending, self._pending = self._pending, {}
        points = []
        for (chart, labels, _), (count, total, lo, hi, last, last_ts) in pending.items():
            point = {"chart": chart, "ts": round(last_ts, 3), "count": count, "sum": total,
                     "min": lo, "max": hi, "last": last}
            if labels:
                point["labels"] = dict(labels)
            points.append(point)
        return points

    # -- sending -------------------------------------------------------------------------------

    def _loop(self):
        while not self._closing.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._closing.is_set():
                break
            try:
                self._flush(None)
            except Exception:
                log.exception("pushplot: flush failed")

    def _flush(self, deadline):
        with self._send_lock:
            self._flush_locked(deadline)

    def _flush_locked(self, deadline):
        with self._lock:
            pings, self._pings = self._pings, []
        points = self._take_spool() + self._take_pending()
        down = False
        # Pings first: the server times a run by when its pings arrive.
        for ping in pings:
            if down:
                self._once(("ping-skipped", ping[0]), "pushplot: ping %s not sent: the server did not answer", ping[0])
                continue
            try:
                self._request(ping[0], ping[1], deadline)
            except _Failed as e:
                down = True
                self._once(("ping-failed", ping[0]), "pushplot: ping %s not sent: %s", ping[0], e)
            except _Refused as e:
                self._once(("ping", e.status, e.code), "pushplot: ping %s refused: %s", ping[0], e)
        unsent = []
        for i in range(0, len(points), _CHUNK):
            chunk = points[i:i + _CHUNK]
            if down:
                unsent.extend(chunk)
                continue
            left = self._send_points(chunk, deadline)
            if left:
                down = True
                unsent.extend(left)
        if unsent:
            self._spool_points(unsent)

    def _send_points(self, chunk, deadline):
        """Sends a chunk of points. Points the server refuses are dropped (logged once) and the
        rest sent again; returns the points that could not be sent for a reason that may pass,
        for the spool."""
        rounds = 0
        while chunk:
            rounds += 1
            body = json.dumps(chunk, separators=(",", ":")).encode()
            try:
                self._request("/api/v1/ingest", body, deadline)
                return []
            except _Failed as e:
                self._once(("failed", str(e)), "pushplot: could not send %d points, spooling them: %s", len(chunk), e)
                return chunk
            except _Refused as refused:
                e = refused
            if e.status == 400 and e.index is not None and 0 <= e.index < len(chunk) and rounds < 50:
                # A batch is refused whole for one bad point: drop it, and the points that surely
                # share its fault, and send the rest again.
                bad = chunk[e.index]
                kept = [p for p in chunk if not _shares_fault(p, bad, e.code)]
                self._once(("point", e.code, bad.get("chart")), "pushplot: dropped %d points of %r: %s",
                           len(chunk) - len(kept), bad.get("chart"), e)
                chunk = kept
                continue
            charts = sorted({p["chart"] for p in chunk})
            if e.status in (403, 413, 422) and len(charts) > 1:
                # Refused for one chart (a key limited to other charts, a chart with too many
                # series): each chart on its own, so that the others still get through.
                left = []
                for chart in charts:
                    points = [p for p in chunk if p["chart"] == chart]
                    # Once the server stopped answering, the rest waits in the spool too.
                    left.extend(points if left else self._send_points(points, deadline))
                return left
            if e.status == 413 and len(chunk) > 1:
                half = len(chunk) // 2
                return self._send_points(chunk[:half], deadline) + self._send_points(chunk[half:], deadline)
            self._once(("refused", e.status, e.code), "pushplot: dropped %d points: %s", len(chunk), e)
            return []
        return []

    def _remaining(self, deadline):
        ends = [d for d in (deadline, self._deadline) if d is not None]
        return min(ends) - time.monotonic() if ends else None

    def _request(self, path, body, deadline):
        """POSTs body; returns on a 2xx, raises _Refused for an answer retrying cannot change and
        _Failed when the tries or the time ran out."""
        reason = "no try"
        for attempt in range(self.tries):
            left = self._remaining(deadline)
            if left is not None and left <= 0:
                raise _Failed("out of time (%s)" % reason)
            wait = None
            try:
                status, headers, text = self._post(path, body, self.timeout if left is None else min(self.timeout, left))
            except Exception as e:  # connection refused, timeout, reset: worth another try
                reason = "%s: %s" % (type(e).__name__, e)
            else:
                if 200 <= status < 300:
                    return
                code, message, index = _error_of(text)
                if status in (408, 429) or status >= 500:
                    reason = "HTTP %s %s" % (status, code or "")
                    if status in (429, 503):
                        wait = _retry_after(headers)
                else:
                    raise _Refused(status, code, message, index)
            if attempt == self.tries - 1:
                break
            if wait is None:
                base = 0.5 * 2 ** attempt
                wait = base / 2 + random.uniform(0, base / 2)
            if wait > self.max_retry_after:
                raise _Failed("%s; Retry-After %.0f s is too long to wait" % (reason, wait))
            left = self._remaining(deadline)
            if left is not None and wait >= left:
                raise _Failed("out of time (%s)" % reason)
            # Wakes early when closing starts, which then bounds what is left.
            self._closing.wait(wait)
        raise _Failed("%d tries (%s)" % (self.tries, reason))

    def _post(self, path, body, timeout):
        req = urllib.request.Request(self.url + path, data=body, method="POST", headers={
            "X-API-Key": self.key,
            "Content-Type": "application/json" if path.endswith("/ingest") else "text/plain; charset=utf-8",
            "User-Agent": "pushplot.py/" + __version__,
        })
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.headers, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            try:
                text = e.read().decode("utf-8", "replace")
            except Exception:
                text = ""
            return e.code, e.headers, text

    # -- the spool -----------------------------------------------------------------------------

    def _locked_spool(self):
        """The spool's lock file, held while it is read or written (between processes, too)."""
        os.makedirs(os.path.dirname(self.spool) or ".", exist_ok=True)
        return _FileLock(self.spool + ".lock")

    def _take_spool(self):
        """The spooled points, taken out of the file, so that no other flush sends them too."""
        if not self.spool or not os.path.exists(self.spool):
            return []
        try:
            with self._locked_spool():
                with open(self.spool, "r+", encoding="utf-8") as f:
                    lines = f.read().splitlines()
                    f.seek(0)
                    f.truncate()
        except OSError as e:
            self._once(("spool-read", e.errno), "pushplot: cannot read the spool %s: %s", self.spool, e)
            return []
        points = []
        for line in lines:
            try:
                points.append(json.loads(line))
            except ValueError:
                pass
        return points

    def _spool_points(self, points):
        if not points:
            return
        if not self.spool:
            self._once("no-spool", "pushplot: dropped %d points that could not be sent (no spool)", len(points))
            return
        new = [json.dumps(p, separators=(",", ":")) + "\n" for p in points]
        try:
            with self._locked_spool():
                try:
                    with open(self.spool, encoding="utf-8") as f:
                        old = f.read().splitlines(keepends=True)
                except FileNotFoundError:
                    old = []
                lines = old + new
                size = sum(len(line.encode()) for line in lines)
                dropped = 0
                while lines and size > self.spool_bytes:
                    size -= len(lines[0].encode())
                    lines.pop(0)
                    dropped += 1
                if dropped:
                    log.warning("pushplot: the spool %s is full (%d bytes): dropped its %d oldest points",
                                self.spool, self.spool_bytes, dropped)
                tmp = "%s.%d.tmp" % (self.spool, os.getpid())
                with open(tmp, "w", encoding="utf-8") as f:
                    f.writelines(lines)
                os.replace(tmp, self.spool)
        except OSError as e:
            self._once(("spool-write", e.errno), "pushplot: cannot write the spool %s, dropped %d points: %s",
                       self.spool, len(points), e)

    # -- job runs ------------------------------------------------------------------------------

    def _ping(self, job, kind, rid, message=""):
        if self._closed or self._thread is None:
            return
        path = "/api/v1/ping/" + urllib.parse.quote(str(job), safe="")
        if kind:
            path += "/" + kind
        path += "?rid=" + urllib.parse.quote(rid, safe="")
        with self._lock:
            self._pings.append((path, message.encode("utf-8", "replace")))
        self._wake.set()

    def _once(self, what, message, *args, **kwargs):
        """Logs a warning the first time `what` happens, so that a failing server or a bad chart
        name does not flood the log."""
        if what in self._told:
            return
        self._told.add(what)
        log.warning(message, *args, **kwargs)


class _Run:
    """`pp.run(job)`: a context manager, and a decorator that makes each call one run."""

    def __init__(self, client, job):
        self._client = client
        self._job = job
        self._local = threading.local()

    def __enter__(self):
        try:
            stack = self._local.__dict__.setdefault("stack", [])
            rid = uuid.uuid4().hex
            stack.append((rid, time.monotonic()))
            self._client._ping(self._job, "start", rid)
        except Exception:
            log.exception("pushplot: run %r could not start", self._job)
        return self

    def __exit__(self, kind, exc, tb):
        try:
            rid, started = self._local.stack.pop()
            took = time.monotonic() - started
            if kind is None:
                self._client._ping(self._job, "", rid, "ok after %.3f s" % took)
            else:
                summary = "".join(traceback.format_exception_only(kind, exc)).strip()
                frames = traceback.extract_tb(tb)
                if frames:
                    last = frames[-1]
                    summary += "\n  at %s:%s in %s" % (last.filename, last.lineno, last.name)
                self._client._ping(self._job, "fail", rid, "%s\n(after %.3f s)" % (summary, took))
        except Exception:
            log.exception("pushplot: run %r could not finish", self._job)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)
        return wrapper


class _FileLock:
    def __init__(self, path):
        self.path = path
        self.f = None

    def __enter__(self):
        self.f = open(self.path, "a")
        if fcntl is not None:
            fcntl.flock(self.f.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        try:
            if fcntl is not None:
                fcntl.flock(self.f.fileno(), fcntl.LOCK_UN)
        finally:
            self.f.close()
        return False


def _shares_fault(point, bad, code):
    """Whether a point surely has the fault the server found in `bad`: as old or older when that
    was too old, the same series when its name or labels were bad, else only `bad` itself."""
    if point is bad:
        return True
    if code == "timestamp_too_old":
        return point.get("ts", 0) <= bad.get("ts", 0)
    if code in ("invalid_chart", "invalid_labels"):
        return point["chart"] == bad["chart"] and point.get("labels") == bad.get("labels")
    return False


def _labels_key(labels):
    """Labels as a hashable, order-free key; values stay JSON scalars, anything else a string."""
    return tuple(sorted(
        (str(k), v if isinstance(v, (str, int, float, bool)) else str(v)) for k, v in labels.items()
    ))


def _error_of(text):
    """The code, message and index of the server's error body, as far as it has them."""
    try:
        e = json.loads(text)["error"]
        return e.get("code"), e.get("message"), e.get("index")
    except Exception:
        return None, (text or "")[:200], None


def _retry_after(headers):
    """Retry-After in seconds (a number or an HTTP date), or None."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(when.timestamp() - time.time(), 0.0)
    except Exception:
        return None


if __name__ == "__main__":
    print(__doc__)
