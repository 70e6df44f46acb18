#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Print the GPU split benchmark's table from the results run.sh left in WORK.

Reads WORK/rows.tsv (or rows.tsv.new, from a run that was cut short),
WORK/json/<row>.json (llama-bench -o json), WORK/plan.json and
WORK/all.json (`pegpu plan --json` under the budget and unlimited),
WORK/meta.tsv and WORK/log/plan.log (llama.cpp's buffer sizes).
Prints Markdown, ready for docs/benchmarks.md.
"""
import json
import os
import re
import sys

GIB = 1024 ** 3


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def rpc_total(plan):
    return sum(d["total_bytes"] for d in plan["devices"] if not d["host"])


def rpc_budget(plan):
    return sum(d["budget_bytes"] for d in plan["devices"] if not d["host"])


def speeds(results_list, pp, tg):
    """(pp mean, pp sd, tg mean, tg sd, runs) over every sample of every
    llama-bench run of a row (its rounds)."""
    pps, tgs, runs = [], [], 0
    for results in results_list:
        if not results:
            continue
        runs += 1
        for r in results:
            samples = r.get("samples_ts") or [r["avg_ts"]]
            if r.get("n_prompt") == pp and r.get("n_gen") == 0:
                pps += samples
            elif r.get("n_prompt") == 0 and r.get("n_gen") == tg:
                tgs += samples

    def ms(v):
        if not v:
            return None, None
        m = sum(v) / len(v)
        sd = (sum((x - m) ** 2 for x in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0.0
        return m, sd
    return (*ms(pps), *ms(tgs), runs)


def placement(work, n_layer):
    """(repeating layers on RPC devices, output layer on one?) as llama.cpp
    logged them for the planner's row, or None without a verbose log."""
    d = os.path.join(work, "log")
    try:
        logs = sorted(n for n in os.listdir(d) if re.fullmatch(r"plan(\.r\d+)?\.log", n))
    except OSError:
        return None
    for name in logs:
        layers = {}
        with open(os.path.join(d, name)) as f:
            for line in f:
                m = re.search(r"load_tensors: layer +(\d+) assigned to device (\S+?),", line)
                if m:
                    layers[int(m.group(1))] = m.group(2)
        if layers:
            n = sum(1 for i, dev in layers.items() if i < n_layer and dev.startswith("RPC"))
            return n, layers.get(n_layer, "").startswith("RPC")
    return None


def row_results(work, rid):
    """Every round's JSON of a row: json/ID.rN.json (json/ID.json too)."""
    d = os.path.join(work, "json")
    names = sorted(n for n in os.listdir(d)
                   if n == rid + ".json" or re.fullmatch(re.escape(rid) + r"\.r\d+\.json", n))
    return [load_json(os.path.join(d, n)) for n in names]


def fmt_ts(v, sd):
    if v is None:
        return "-"
    return f"{v:.1f} ± {sd:.1f}" if v < 100 else f"{v:.0f} ± {sd:.0f}"


def fmt_ratio(v, best):
    if v is None or not best:
        return "-"
    return f"{v / best:.3f}"


def main():
    work = sys.argv[1]
    meta = {}
    try:
        with open(os.path.join(work, "meta.tsv")) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("\t")
                meta[k] = v
    except OSError:
        pass
    pp = int(meta.get("pp", 512))
    tg = int(meta.get("tg", 64))

    rows_path = os.path.join(work, "rows.tsv")
    if not os.path.exists(rows_path):
        rows_path += ".new"
    rows = []
    with open(rows_path) as f:
        for line in f:
            rid, label, kind, ngl, args = line.rstrip("\n").split("\t")
            rows.append(dict(id=rid, label=label, kind=kind, ngl=int(ngl), args=args))

    plan = load_json(os.path.join(work, "plan.json"))
    allp = load_json(os.path.join(work, "all.json"))
    n_layer = plan["model"]["n_layer"]
    g = plan["gpu_layers"]
    budget = rpc_budget(plan)
    tp, ta = rpc_total(plan), rpc_total(allp)
    # dense layers are all the same size: bytes per layer on the eGPU (weights
    # + KV at the planned context), and the output layer's bytes
    per = (ta - tp) / (n_layer - g) if n_layer > g else None
    out_b = tp - g * per if per is not None else None

    # How does this llama.cpp read -ngl?  The planner's row runs with -v, and
    # llama.cpp logs where each layer went ("load_tensors: layer N assigned
    # to device X"; layer n_layer is the output layer).  Newer llama.cpp
    # counts the output layer first (-ngl N: the last N-1 layers + output);
    # older releases count it last (-ngl N <= n_layer: the last N layers,
    # the output layer stays on the CPU).
    plan_ngl = plan["ngl"]
    plan_out = any(d["output"] for d in plan["devices"] if not d["host"])
    placed = placement(work, n_layer)
    if placed is None:
        order = "output-first"	# the planner's assumption, unchecked
    else:
        n_rpc, out_rpc = placed
        if n_rpc == min(plan_ngl - 1, n_layer) and out_rpc == (plan_ngl >= 1):
            order = "output-first"
        elif n_rpc == min(plan_ngl, n_layer) and out_rpc == (plan_ngl > n_layer):
            order = "output-last"
        else:
            order = "unknown"

    def egpu_split(ngl):
        """(repeating layers, output layer?) on the eGPU for -ngl ngl."""
        if ngl <= 0:
            return 0, False
        if order == "output-last":
            return min(ngl, n_layer), ngl > n_layer
        return min(ngl - 1, n_layer), True

    def egpu_bytes(r):
        if r["kind"] == "cpu" or r["ngl"] == 0:
            return 0
        if r["kind"] == "local":
            return ta
        if per is None:
            return None
        n, out = egpu_split(r["ngl"])
        return n * per + (out_b if out else 0)

    def egpu_layers(r):
        if r["kind"] == "cpu":
            return "0"
        n, out = egpu_split(r["ngl"])
        return f"{n}+out" if out else f"{n}"

    for r in rows:
        r["pp"], r["pp_sd"], r["tg"], r["tg_sd"], r["runs"] = speeds(
            row_results(work, r["id"]), pp, tg)
        r["bytes"] = egpu_bytes(r)
        if r["kind"] in ("sweep", "plan"):
            r["fits"] = r["bytes"] is not None and r["bytes"] <= budget
        else:
            r["fits"] = None

    fitting = [r for r in rows if r["kind"] == "sweep" and r["fits"]]
    best_pp = max((r for r in fitting if r["pp"]), key=lambda r: r["pp"], default=None)
    best_tg = max((r for r in fitting if r["tg"]), key=lambda r: r["tg"], default=None)
    bpp = best_pp["pp"] if best_pp else None
    btg = best_tg["tg"] if best_tg else None

    print(f"GPU split benchmark, {meta.get('date', '?')}")
    print(f"- GPU (the eGPU, rpc-server with CUDA on 127.0.0.1): {meta.get('gpu', '?')}")
    print(f"- host (the Mac): CPU, CUDA hidden, llama-bench -t {meta.get('threads', '?')}: "
          f"{meta.get('cpu', '?')}")
    m = plan["model"]
    print(f"- model: pegpu-mkgguf {meta.get('model_flags', '?')}: {n_layer} layers, "
          f"n_embd {m['n_embd']}, {m['n_head']} heads ({m['n_head_kv']} KV), "
          f"{m['weight_bytes'] / GIB:.2f} GiB F16")
    print(f"- eGPU budget: {meta.get('gpu_free', '?')} free - {meta.get('reserve', '?')} reserve "
          f"= {budget / GIB:.2f} GiB for weights + KV at ctx {plan['ctx']}"
          + (f" ({per / GIB:.3f} GiB a layer)" if per else ""))
    print(f"- llama-bench pp{pp} / tg{tg}, {meta.get('reps', '?')} repetitions a run, "
          f"{meta.get('rounds', '1')} round(s) of all rows, interleaved; tokens/s: mean ± sd "
          f"over all samples; ratios against the best split that fits the budget")
    print(f"- planner: {plan['command']}")
    try:
        with open(os.path.join(work, "bench-args.txt")) as f:
            for line in f:
                if line.startswith("llama-bench:"):
                    print(f"  as llama-bench: {line.split(':', 1)[1].strip()}")
    except OSError:
        pass
    print()
    print(f"| row | eGPU layers | eGPU GiB | fits | pp{pp} t/s | tg{tg} t/s | pp ÷ best | tg ÷ best |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if r["kind"] == "plan":
            name = f"**planner** (-ngl {r['ngl']})"
        elif r["kind"] == "sweep":
            name = f"RPC -ngl {r['ngl']}"
            if r["ngl"] == n_layer + 1:
                name += " (all on RPC GPU)"
            elif r["ngl"] == 0:
                name += " (CPU, RPC connected)"
        elif r["kind"] == "cpu":
            name = "all CPU, no RPC"
        else:
            name = "same GPU locally, no RPC"
        b = r["bytes"]
        gib = "-" if b is None else f"{b / GIB:.2f}"
        fits = {True: "yes", False: "**over**", None: "n/a"}[r["fits"]]
        mark_pp = " (best)" if r is best_pp else ""
        mark_tg = " (best)" if r is best_tg else ""
        print(f"| {name} | {egpu_layers(r) if r['kind'] != 'local' else 'all (local)'} | {gib} "
              f"| {fits} | {fmt_ts(r['pp'], r['pp_sd'])}{mark_pp} "
              f"| {fmt_ts(r['tg'], r['tg_sd'])}{mark_tg} "
              f"| {fmt_ratio(r['pp'], bpp)} | {fmt_ratio(r['tg'], btg)} |")
    print()

    def row(kind, ngl=None):
        for r in rows:
            if r["kind"] == kind and (ngl is None or r["ngl"] == ngl):
                return r
        return None

    p = row("plan")
    # the rule the planner planned for (pegpu plan --json says; older
    # plans had only the output-first rule)
    meant = "output-last" if plan.get("ngl_rule") == "layers-only" else "output-first"
    if placed is not None and order != meant:
        n_rpc, out_rpc = placed
        print(f"WARNING: for the planner's -ngl {plan_ngl} this llama.cpp put {n_rpc} repeating "
              f"layers {'and the output layer ' if out_rpc else ''}on the eGPU; the planner "
              f"meant {g}{' and the output layer' if plan_out else ''}.")
        if order == "output-last" and meant == "output-first":
            print(f"  This llama.cpp counts the output layer last (-ngl N <= {n_layer}: the last N "
                  f"layers, output on the CPU); the planner follows newer llama.cpp, which counts "
                  f"it first. The eGPU columns above follow this llama.cpp.")
    elif placed is not None:
        print(f"llama.cpp placed the planner's -ngl {plan_ngl} as planned: {placed[0]} layers"
              f"{' + output' if placed[1] else ''} on the eGPU.")

    def verdict(what, r):
        if not (r and r["pp"] and r["tg"] and bpp and btg):
            print(f"{what}: not enough results")
            return
        rpp, rtg = r["pp"] / bpp, r["tg"] / btg
        ok = rpp >= 0.95 and rtg >= 0.95
        fit = "fits the budget" if r["fits"] else "OVER the budget"
        print(f"{what}: {egpu_layers(r)} layers on the eGPU, {r['bytes'] / GIB:.2f} GiB, {fit}; "
              f"against the best split within the budget: prompt {rpp:.3f} (best: -ngl "
              f"{best_pp['ngl']}), generation {rtg:.3f} (best: -ngl {best_tg['ngl']}): "
              f"{'within' if ok else 'NOT within'} 5% -> "
              f"{'PASS' if ok and r['fits'] else 'FAIL'}")

    def sweep_row(ngl):
        return next((r for r in rows if r["kind"] == "sweep" and r["ngl"] == ngl), None)

    # the planner's arguments, measured like every other split: the sweep
    # row with the same -ngl (its llama-bench arguments are the same)
    same = sweep_row(plan_ngl) if p and \
        sweep_row(plan_ngl) and sweep_row(plan_ngl)["args"].split() == \
        [a for a in p["args"].split() if a != "-v"] else None
    if same:
        verdict(f"Planner's arguments (-ngl {plan_ngl}, sweep row)", same)
    else:
        print(f"Planner's arguments: no sweep row has exactly them "
              f"({' '.join(a for a in p['args'].split() if a != '-v') if p else '-'}); see the planner row")
    if p:
        verdict(f"Planner's arguments (-ngl {plan_ngl}, planner row, run apart)", p)
        if same and same["tg"] and p["tg"]:
            print(f"  the same placement in two rows: pp {p['pp'] / same['pp']:.3f}, "
                  f"tg {p['tg'] / same['tg']:.3f} apart (run-to-run noise)")
    if order == "output-last" and meant == "output-first" and g <= n_layer:
        # the planner's split in this llama.cpp's terms: its g layers; the
        # output layer (tiny for these models) stays on the CPU
        verdict(f"Planner's intended split ({g} layers on the eGPU) as this llama.cpp's -ngl {g}",
                sweep_row(g))
    allrpc, loc, cpu = row("sweep", n_layer + 1), row("local"), row("cpu")
    if allrpc and loc and allrpc["tg"] and loc["tg"]:
        print(f"RPC hop: all layers over RPC against the same GPU locally: "
              f"pp {allrpc['pp'] / loc['pp']:.3f}, tg {allrpc['tg'] / loc['tg']:.3f} "
              f"(the hop costs {100 * (1 - allrpc['tg'] / loc['tg']):.0f}% of generation speed)")
    if p and cpu and p["tg"] and cpu["tg"]:
        print(f"Planner against all-CPU: pp x{p['pp'] / cpu['pp']:.1f}, tg x{p['tg'] / cpu['tg']:.1f}")
    # llama.cpp's own account of the planner's placement
    try:
        logs = sorted(n for n in os.listdir(os.path.join(work, "log"))
                      if re.fullmatch(r"plan(\.r\d+)?\.log", n))
        with open(os.path.join(work, "log", logs[0])) as f:
            bufs = [l.strip() for l in f
                    if re.search(r"(model|KV|compute) buffer size", l)]
        if bufs:
            print(f"llama.cpp's buffers for the planner's row (pp{pp} context: KV for "
                  f"{pp} tokens, not {plan['ctx']}):")
            seen = set()
            for l in bufs:	# the first context's (pp) lines; the tg one repeats them
                key = re.sub(r"=.*", "", l)
                if key not in seen:
                    seen.add(key)
                    print("  " + l)
    except (OSError, IndexError):
        pass


if __name__ == "__main__":
    main()
