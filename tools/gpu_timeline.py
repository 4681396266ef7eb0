#!/usr/bin/env python3
"""gpu_timeline.py - where a GPU decode step's time goes, kernel by kernel.

Reads the events that FS_CUDA_TIMELINE=file writes (src/cuda/timeline.c,
common.cuh tl_mark): for the first and last block of each decode kernel,
the GPU clock when its loads were issued (start), when its weights
arrived (loaded), when its wait for the previous kernel returned
(waited), when its input was ready (input), when attention's ranges were
done (mid) and when it ended. The marks exist only in the timeline build:

    make BUILD=build-tl CUDA_TIMELINE=1 build-tl/fs
    FS_CUDA_TIMELINE=/tmp/tl.txt build-tl/fs bench -m MODEL --backend cuda --pp 0 --tg 128 -r 1
    python3 tools/gpu_timeline.py /tmp/tl.txt

A step is what lies between two set_step_ring starts (one replayed
graph). In each step a kernel call is a (kind, tag) pair - the tag is its
weights' or cache's address - and the calls are put in chain order by
when their wait returned. For each kind of call (qkv, rope_kv, ...) it
prints the median over the layers and the steps:

  chain   waited(next) - waited(this): what the call adds to the step
          (its share of the step: that times the calls a step)
  wait    waited(this) - end(previous): from the previous kernel's last
          (recorded) block ending to this one's wait returning - the
          programmatic launch's hand-over
  input   input(this) - waited(this): its input in place (a GEMV's row
          normalized in shared memory, attention's queries)
  mid     attention only: its ranges done, before the combine
  loaded  a GEMV's first weights in registers (the marking thread waited
          for them before its wait), minus waited: negative = before
  work    end(this) - waited(this): the call's own work once the
          previous kernel has finished
  early   waited(this) - start(this): how long its first blocks were on
          an SM, loads issued, before the input was ready

Standard library only (CI and the docs' build have no packages).
Docs: docs/gpu.md
"""
import sys
from collections import Counter, defaultdict

KINDS = {1: "set_step", 2: "embed", 3: "gemv", 4: "gemv_split", 5: "rope_kv", 6: "attention", 7: "argmax"}
PHASES = ("start", "waited", "end", "input", "mid", "loaded")   # common.cuh TL_START .. TL_LOADED
LAYER = ["qkv", "rope_kv", "attention", "o_proj", "gate/up", "down"]


class Bad(Exception):
    pass


def read(path):
    ev = []
    with open(path, encoding="ascii", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if line.startswith("#") or not line.strip():
                continue
            v = line.split()
            if len(v) != 6 or not all(x.isascii() and x.isdigit() for x in v) or int(v[2]) > 5:
                raise Bad("%s:%d: expected 't_ns kind phase last_block sm tag' (6 integers, phase 0-5)" % (path, n))
            ev.append(tuple(int(x) for x in v))
    ev.sort()
    return ev


def steps(ev):
    """Split the events at each set_step_ring start."""
    out, cur = [], None
    for e in ev:
        if e[1] == 1 and e[2] == 0:
            if cur:
                out.append(cur)
            cur = []
        if cur is not None:
            cur.append(e)
    if cur:
        out.append(cur)
    return out


def calls(step):
    """The step's kernel calls in chain order: dicts of kind and the
    phases' times (None where not marked) - the earliest start, the latest
    of the others."""
    by = {}
    for t, kind, phase, last, sm, tag in step:
        c = by.setdefault((kind, tag), dict({"kind": kind}, **{p: None for p in PHASES}))
        key = PHASES[phase]
        if key == "start":
            c[key] = t if c[key] is None else min(c[key], t)
        else:
            c[key] = t if c[key] is None else max(c[key], t)
    cs = [c for c in by.values() if c["waited"] is not None]
    cs.sort(key=lambda c: c["waited"])
    return cs


def label(cs):
    """Names: embed, then six per layer (qkv, rope_kv, attention, o_proj,
    gate/up, down), then lm_head and argmax - where the kinds follow that
    pattern; otherwise the kinds' own names."""
    names = [KINDS.get(c["kind"], "?") for c in cs]
    gemv = lambda k: 3 if k in (3, 4) else k   # plain or split: either is a GEMV
    want = [3, 5, 6, 3, 3, 3]
    i = 0
    out = []
    while i < len(cs):
        k = gemv(cs[i]["kind"])
        if k == 3 and i + 6 <= len(cs) and [gemv(cs[i + j]["kind"]) for j in range(6)] == want:
            out += LAYER
            i += 6
            continue
        if k == 3:
            out.append("lm_head")
        else:
            out.append(names[i])
        i += 1
    return out


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: gpu_timeline.py EVENTS_FILE  (written by FS_CUDA_TIMELINE=file)\n")
        return 2
    try:
        ev = read(argv[1])
    except (OSError, Bad) as e:
        sys.stderr.write("gpu_timeline: %s\n" % e)
        return 1
    st = steps(ev)
    if len(st) < 4:   # the first two are skipped as warm-up, the last may be cut short
        sys.stderr.write("gpu_timeline: fewer than 4 decode steps in %s (run fs bench with --pp 0 --tg 128)\n" % argv[1])
        return 1
    st_calls = [calls(s) for s in st]
    n_calls, _ = Counter(len(cs) for cs in st_calls).most_common(1)[0]
    if n_calls == 0:
        sys.stderr.write("gpu_timeline: the steps in %s hold no kernel calls\n" % argv[1])
        return 1
    t0s = [s[0][0] for s in st]
    keep = [i for i, cs in enumerate(st_calls[:-1]) if len(cs) == n_calls and i >= 2]   # skip the warm-up
    if not keep:
        sys.stderr.write("gpu_timeline: no regular steps\n")
        return 1
    acc = defaultdict(lambda: defaultdict(list))
    step_ns = []
    for i in keep:
        cs = st_calls[i]
        names = label(cs)
        step_ns.append(t0s[i + 1] - t0s[i])
        nxt_waited = [c["waited"] for c in cs[1:]] + [t0s[i + 1]]
        for j, (c, n) in enumerate(zip(cs, names)):
            a = acc[n]
            a["chain"].append(nxt_waited[j] - c["waited"])
            if j > 0 and cs[j - 1]["end"] is not None:
                a["wait"].append(c["waited"] - cs[j - 1]["end"])
            for key, phase in (("work", "end"), ("input", "input"), ("mid", "mid"), ("loaded", "loaded")):
                if c[phase] is not None:
                    a[key].append(c[phase] - c["waited"])
            if c["start"] is not None:
                a["early"].append(c["waited"] - c["start"])
    def median(v):   # not the mean: a step that met a host delay must not move it
        if not v:
            return float("nan")
        v = sorted(v)
        return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
    per_step = median(step_ns)
    if not per_step > 0:
        sys.stderr.write("gpu_timeline: the steps in %s take no time (broken clock values?)\n" % argv[1])
        return 1
    print("%d steps of %d kernel calls; a step %.1f us (%.0f tok/s)" % (len(keep), n_calls, per_step / 1e3, 1e9 / per_step))
    print("")
    print("| call | per step | chain us | of the step | wait us | loaded us | input us | mid us | work us | early us |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    order = ["set_step", "embed"] + LAYER + ["lm_head", "argmax"]
    order += [n for n in acc if n not in order]
    for n in order:
        if n not in acc:
            continue
        a = acc[n]
        k = len(a["chain"]) / len(keep)
        tot = median(a["chain"]) * k
        ms = lambda key: "%.2f" % (median(a[key]) / 1e3) if a[key] else "-"
        print("| %s | %g | %.2f | %.1f%% | %s | %s | %s | %s | %s | %s |" % (
            n, k, median(a["chain"]) / 1e3, 100 * tot / per_step, ms("wait"), ms("loaded"), ms("input"), ms("mid"),
            ms("work"), ms("early")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
