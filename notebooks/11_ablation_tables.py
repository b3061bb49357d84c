# %% [markdown]
# # 11 · The ablation tables: the four papers' claims beside ours
#
# Notebooks 05–09 each judged a few claims of the four seed papers (docs/papers.md: CrossAttnGL, TopKTemporal, ETVA,
# CrossTVR), one claim at a time, each under its own protocol. This notebook trains nothing: it reads what those
# notebooks wrote under `results/<profile>/` and puts it back into the **shape of the papers' own tables**, so that a
# reader who knows a paper's Table 6 can see, row by row, what stands for each of its rows here and which way the
# differences went.
#
# **What you will learn here**
#
# * every ablation table we judge, as the paper prints it (t2v R@1, R@5, R@10, MdR, MnR), with the head of ours that
#   stands for each row and its R@1 over training seeds (mean ± std [min, max]), and under each table its claims:
#   the paper's difference, ours with its 95 % CI, how many seeds agree, the verdict;
# * which rows have no counterpart here and why (the paper's Large model, its GPU cost table, a second vision
#   encoder);
# * each paper's main MSR-VTT table restricted to the methods we implement, the reported numbers beside ours;
# * the verdicts counted per paper, our own hypotheses, and what the papers contradict in themselves: a hand list
#   from `data/paper_tables/README.md` and the reported rows whose recalls and median rank cannot all be true;
# * whether each verdict and the order of the heads survive a second generated benchmark (claims whose verdict
#   changes are marked *fragile*), and the larger `full` profile beside `quick` when it has run;
# * the per-factor twin accuracy of every head we trained, side by side.
#
# **Only directions are compared.** On the `quick` profile our numbers come from a synthetic benchmark and a tiny
# CLIP whose features stay frozen; the papers fine-tune CLIP ViT-B/32 (or larger) on MSR-VTT. An R@1 of 12 here and
# 51 there says nothing about either method; what can agree or disagree is the sign of a difference between two rows
# of one table, and that is what the verdicts judge.
#
# Which of our rows stands for which reported row is written down once, in `data/paper_tables/row_map.csv` (with a
# note for every caveat and every row we cannot reproduce); the inconsistencies of the papers are hand-listed in
# `data/paper_tables/inconsistencies.csv`. The functions are in `tvrlib/tables.py`.
#
# **On real data:** `python -m tvrlib run-notebooks --profile msrvtt --out results/msrvtt/executed notebooks/11_ablation_tables.ipynb`
# after notebooks 04–10 on the same profile (`docs/reproduce-real-data.md`); rows whose results file is missing say
# "not yet run".

# %% tags=["parameters"]
profile = "quick"  # quick | full | msrvtt: whose results are read (results/<profile>/)
metric = "R1"  # our per-seed number shown beside each reported row (the claims' primary metric)
digits = 1  # decimals in the tables
second = "quick_alt"  # the profile of the robustness check (another generated benchmark); None: skip it
larger = "full"  # the larger profile shown beside this one when its results exist; None: skip it
rank_tie = 1.0  # two heads whose mean R@1 differ by at most this many points count as tied when rankings are compared

# %%
import math
import textwrap

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from tvrlib.paper_tables import load_claims, load_paper_table
from tvrlib.paths import PROJECT_ROOT, results_dir
from tvrlib.profiles import get_profile
from tvrlib.reporting import figure, save_figure, save_results, versions
from tvrlib.tables import (
    MAPPED,
    PAPERS,
    beside_reported,
    by_comparison,
    check_row_map,
    claims_view,
    hypotheses_view,
    load_inconsistencies,
    load_row_map,
    load_twins,
    notebook_of,
    order_agreement,
    rank_problems,
    table_number,
    twin_matrix,
    unmapped_methods,
    verdict_counts,
)

NB = "11_ablation_tables"
REPORTED = ["R1", "R5", "R10", "MdR", "MnR"]


def numbers(t):
    """The reported metric columns that hold a number in ``t``."""
    return [m for m in REPORTED if m in t and t[m].notna().any()]


def as_printed(t):
    """Reported numbers with one decimal, empty where the paper prints none."""
    return t.assign(**{m: t[m].map(lambda v: "" if pd.isna(v) else f"{v:.1f}") for m in numbers(t)})


pd.set_option("display.max_colwidth", 90)
pd.set_option("display.width", 200)
RES = results_dir(profile)
row_map = load_row_map()
problems = check_row_map(row_map, load_paper_table)
assert not problems, "row_map.csv does not match the reported tables:\n" + "\n".join(problems)
reported = {seed_id: load_paper_table(seed_id) for seed_id in PAPERS}
claims = load_claims(profile, "claims")
hypotheses = load_claims(profile, "hypotheses")
prof = get_profile(profile)
synthetic = prof["dataset"] == "synthetic"
OURS = f"ours ({profile}: " + (f"synthetic benchmark '{prof['benchmark']}'" if synthetic else prof["dataset"]) + f", {prof['clip_model']} frozen)"  # fmt: skip
files = sorted(row_map.loc[row_map["status"].isin(MAPPED), "results_file"].unique())
found = [f for f in files if (RES / f).exists()]
print(f"profile {profile}: {len(found)} of the {len(files)} results files the row map names exist")
print("missing (the rows they feed say 'not yet run'):", ", ".join(f"{f} ({notebook_of(f)})" for f in files if f not in found) or "none")  # fmt: skip
print(f"claims.csv: {len(claims)} paper claims; hypotheses.csv: {len(hypotheses)} hypotheses")
versions().T

# %% [markdown]
# ## 1. Every judged ablation table, in the paper's shape
#
# First the reported rows themselves (t2v, as transcribed in `data/paper_tables/`) and what stands for each of them
# here, straight from the row map: the head (its label in the results file), the notebook that trained it, and the
# row's status:
#
# | status | meaning |
# |---|---|
# | ours | the run the notebook judged the claims on (for a main table: our run of that method) |
# | stand-in | another notebook's run of the same head, shown because the judged run is not saved; a number to read with the note, not the one the verdict rests on |
# | not implemented | no such model here (e.g. CrossTVR's Large model, EVA-CLIP ViT-G/14) |
# | not comparable | the row measures something our setting does not have (GPU memory and hours; a second vision encoder) |
#
# A reported row can have two rows of ours (two readings of a garbled label; one head under two notebooks'
# protocols); every one is shown. This cell reads only committed files, so its output never changes (nbval checks
# it):

# %%
# NBVAL_CHECK_OUTPUT
ablation_tables = list(dict.fromkeys(zip(row_map.loc[row_map["kind"] == "ablation", "seed_id"], row_map.loc[row_map["kind"] == "ablation", "table"])))  # fmt: skip
for seed_id, paper in PAPERS.items():
    shown = []
    for s, table in ablation_tables:
        if s != seed_id:
            continue
        maps = row_map[(row_map["seed_id"] == s) & (row_map["table"] == table)]
        shown.append(beside_reported(reported[seed_id][reported[seed_id]["table"] == table], maps, None))  # the map only
    if not shown:
        continue
    t = pd.concat(shown, ignore_index=True)
    keep = ["table", "method", *numbers(t), "ours", "from", "status", "note"]
    display(Markdown(f"**{paper}** (seed {seed_id}), reported t2v rows and what stands for them"))
    display(as_printed(t[keep]).set_index(["table", "method"]))

# %% [markdown]
# Now ours beside them. For each table: the reported rows, our head's **t2v R@1 over training seeds, mean ± std
# [min, max]** and the number of seeds (from the notebook's per-seed file), and under it the claims of that table
# from `claims.csv`: the paper's difference A − B, ours with its paired 95 % CI over test queries and seeds, how many
# seeds have A − B on the paper's side, and the verdict (*reproduces*: the CI excludes 0 on the paper's side and
# every seed agrees; *opposite*: the same on the other side; otherwise *not significant*). Each claim was judged once,
# in the notebook named beside it, on runs under one protocol; rows that come from different notebooks (the `from`
# column) were trained under different quick budgets, so compare numbers within a notebook, not across.
#
# A table whose results file does not exist yet (a notebook not run on this profile) says so row by row; a table
# with no claim in `claims.csv` says "no claims".

# %%
judged = list(ablation_tables)
for paper_name, table in dict.fromkeys(zip(claims["paper"], claims["table"])):  # judged main tables (CrossTVR Table 1)
    seed_id = next((s for s, p in PAPERS.items() if p == paper_name), None)
    labels = row_map.loc[row_map["seed_id"] == seed_id, "table"].unique()
    label = next((x for x in labels if table_number(x) == table_number(table)), None)
    if label is not None and (seed_id, label) not in judged:
        judged.append((seed_id, label))
beside = {}
for seed_id, table in judged:
    maps = row_map[(row_map["seed_id"] == seed_id) & (row_map["table"] == table)]
    t = beside_reported(reported[seed_id][reported[seed_id]["table"] == table], maps, RES, metric=metric, only_mapped=(maps["kind"] == "main").all(), digits=digits)  # fmt: skip
    beside[(seed_id, table)] = t
    rep_cols = numbers(t)
    block = reported[seed_id][(reported[seed_id]["table"] == table) & (reported[seed_id]["direction"] == "t2v")]
    where = ", ".join(x for x in [block["dataset"].iloc[0], block["split"].iloc[0]] if x)
    display(Markdown(f"### {PAPERS[seed_id]} {table} ({where}, t2v)"))
    view = as_printed(t[["method", *rep_cols, "ours", "from", f"ours {metric}", "seeds", "status"]])
    view.columns = pd.MultiIndex.from_tuples([("reported", c) for c in ["row", *rep_cols]] + [(OURS, c) for c in ["head", "from", f"{metric} mean ± std [min, max]", "seeds", "status"]])  # fmt: skip
    display(view)
    for m, h, st, n in zip(t["method"], t["ours"], t["map_status"], t["note"]):
        if st == "stand-in":
            print(f"stand-in for {m!r}: {h}; {n}")
    c = claims_view(claims, PAPERS[seed_id], table, digits=digits)
    if c.empty:
        print(f"no claims of {PAPERS[seed_id]} {table_number(table)} in claims.csv (skipped: not yet judged on this profile)")
    else:
        display(c.drop(columns=["paper", "table"]).set_index("claim"))
        reasons = claims.loc[(claims["paper"] == PAPERS[seed_id]) & (claims["table"].map(table_number) == table_number(table)), "reason"]  # fmt: skip
        for r in dict.fromkeys(x for x in reasons if x):
            print("caveat:", textwrap.fill(r, 180, subsequent_indent="  "))
shown_claims = {(PAPERS[s], table_number(t)) for s, t in judged}
orphans = claims[[(p, table_number(t)) not in shown_claims for p, t in zip(claims["paper"], claims["table"])]]
if len(orphans):
    print("claims of tables the row map does not show:")
    display(claims_view(orphans))

# %% [markdown]
# ## 2. The main tables, restricted to the methods we implement
#
# Each paper's main MSR-VTT text-to-video table, with only the rows of methods that exist here (as the row map
# names them), the reported numbers beside ours. **These are different benchmarks**: the left half is MSR-VTT with
# CLIP fine-tuned end to end, the right half the profile named in its header. CLIP4Clip's 44.5 in three papers is its
# seqTransf figure, so our seqTransf stands for it. Our rows come from the notebooks named in `from`, each under its own
# quick budget. DRL's WTI (notebook 07) appears in no seed table, so it has no row here.

# %%
main_order = {}
for seed_id, paper in PAPERS.items():
    maps = row_map[(row_map["seed_id"] == seed_id) & (row_map["kind"] == "main")]
    if maps.empty:
        continue
    table = maps["table"].iloc[0]
    rep = reported[seed_id][reported[seed_id]["table"] == table]
    t = beside_reported(rep, maps, RES, metric=metric, only_mapped=True, digits=digits)
    beside.setdefault((seed_id, table), t)
    block = f"{maps['dataset'].iloc[0]} {maps['split'].iloc[0]}".strip()
    rep_cols = numbers(t)
    display(Markdown(f"### {paper} {table}: {block}, t2v"))
    view = as_printed(t[["method", *rep_cols, "ours", "from", f"ours {metric}", "seeds", "status"]])
    view.columns = pd.MultiIndex.from_tuples([(f"reported ({block})", c) for c in ["row", *rep_cols]] + [(OURS, c) for c in ["head", "from", f"{metric} mean ± std [min, max]", "seeds", "status"]])  # fmt: skip
    display(view)
    others = unmapped_methods(rep, maps)
    print(f"not implemented here ({len(others)} other rows of this block):", ", ".join(others) or "none")
    agree, pairs = order_agreement(t, metric)
    main_order[paper] = (agree, pairs)
    if pairs:
        print(f"pairs of rows whose means of ours are ordered as the paper's {metric}: {agree} of {pairs} (means only, not a test)")  # fmt: skip

# %% [markdown]
# ## 3. Summary
#
# ### Verdicts per paper
#
# The claims of `claims.csv` counted per paper and verdict (they depend on this profile's runs):

# %%
if claims.empty:
    print(f"skipped: no claims.csv under results/{profile}/ (notebooks 05–09 write it)")
else:
    counts = verdict_counts(claims)
    counts.loc["all papers"] = counts.sum()
    display(counts)

# %% [markdown]
# Some rows above judge **one comparison of a paper under two readings**, and so count it twice: CrossAttnGL's
# Table 2 "Cross-modal" row is read both as the aggregation alone (notebook 05, scored by a cosine) and as the full
# model (notebook 06), and one ETVA Table 5 row label is uncertain in the OCR. `data/paper_tables/claim_readings.csv`
# lists them. Counted once per comparison, a comparison whose readings do not get the same verdict is counted as
# *readings disagree*:

# %%
if claims.empty:
    print("skipped: no claims")
else:
    comparisons = by_comparison(claims)
    two = comparisons[comparisons["readings"] > 1]
    print(f"{len(claims)} claims judge {len(comparisons)} comparisons of the papers; {len(two)} of them under two readings:")
    display(two.set_index(["paper", "table", "comparison"]).drop(columns="readings"))
    per_comparison = verdict_counts(comparisons, verdicts=("reproduces", "opposite", "not significant", "readings disagree"))
    per_comparison.loc["all papers"] = per_comparison.sum()
    display(per_comparison)

# %% [markdown]
# The claims themselves, grouped by verdict:

# %%
if claims.empty:
    print("skipped: no claims")
else:
    for v, group in claims.groupby("verdict", sort=False):
        display(Markdown(f"**{v}** ({len(group)})"))
        display(claims_view(group, digits=digits).drop(columns=["verdict"]).set_index(["paper", "table", "claim"]))

# %% [markdown]
# ### Our own hypotheses
#
# Stated in notebooks 03–10 before their numbers (`hypotheses.csv`), except notebook 09's two about the negatives,
# which were stated after a one-seed sweep and say "post hoc"; a hypothesis is *supported*, *contradicted* or
# *not significant*, never "reproduces" (there is no paper result behind it).

# %%
if hypotheses.empty:
    print(f"skipped: no hypotheses.csv under results/{profile}/")
else:
    display(verdict_counts(hypotheses, by="notebook", verdicts=("supported", "contradicted", "not significant")))
    display(hypotheses_view(hypotheses).set_index(["notebook", "hypothesis"]))

# %% [markdown]
# ### What the papers contradict in themselves
#
# Hand-listed from `data/paper_tables/README.md` (`data/paper_tables/inconsistencies.csv`): rows that equal rows of
# another table they should not equal, text that the tables contradict, values as printed that cannot be true, and
# readings of the OCR that remain uncertain.

# %%
# NBVAL_CHECK_OUTPUT
inconsistencies = load_inconsistencies()
print(
    "by type and paper:",
    inconsistencies.groupby(["paper", "type"], sort=False).size().to_dict(),
)
for paper, group in inconsistencies.groupby("paper", sort=False):
    display(Markdown(f"**{paper}**"))
    display(group[["table", "type", "description"]].set_index(["table", "type"]))

# %% [markdown]
# Some of these can be checked from the numbers alone. A median rank must be 1 when R@1 is above 50 %, and above K
# when R@K is below 50 %; R@1 ≤ R@5 ≤ R@10. Every reported row (t2v and v2t, all tables) that breaks one of these:

# %%
# NBVAL_CHECK_OUTPUT
impossible = pd.concat([rank_problems(reported[s]).assign(paper=p) for s, p in PAPERS.items()], ignore_index=True)
rows_hit = impossible[["paper", "table", "dataset", "split", "direction", "method"]].drop_duplicates()
print(f"{len(impossible)} problems in {len(rows_hit)} rows; rows per paper: {rows_hit.groupby('paper', sort=False).size().to_dict()}")  # fmt: skip
impossible.set_index(["paper", "table", "dataset", "split", "direction", "method"])

# %% [markdown]
# And the row equalities the README reports, recomputed from the transcriptions (t2v R@1, R@5, R@10):

# %%
# NBVAL_CHECK_OUTPUT
def row(seed_id, table, method, dataset=None, direction="t2v", cols=("R1", "R5", "R10")):
    t = reported[seed_id]
    t = t[(t["table"] == table) & (t["method"] == method) & (t["direction"] == direction)]
    if dataset is not None:
        t = t[t["dataset"] == dataset]
    assert len(t) == 1, (seed_id, table, method, dataset)
    return tuple(float(t[c].iloc[0]) for c in cols)


checks = [
    ("CrossAttnGL: Tables 2-3's full model equals Table 1's MSVD row", row("000", "Table 2 (ablation)", "cross-modal aggregation") == row("000", "Table 1", "ours", "MSVD")),
    ("CrossAttnGL: Tables 2-3's full model equals Table 1's MSR-VTT row", row("000", "Table 3 (ablation)", "global+local") == row("000", "Table 1", "ours", "MSR-VTT")),
    ("CrossTVR: Table 1's Base row equals Table 10's sharing-encoder row (R1, R5, MnR)", row("003", "Table 1", "CrossTVR (Base)", cols=("R1", "R5", "MnR")) == row("003", "Table 10 (appendix ablation)", "sharing vision encoder", cols=("R1", "R5", "MnR"))),
    ("CrossTVR: Table 8's TS2Net+CrossTVR equals Table 10's unsharing row (R1, R5, MnR)", row("003", "Table 8 (ablation)", "TS2Net+CrossTVR", cols=("R1", "R5", "MnR")) == row("003", "Table 10 (appendix ablation)", "unsharing vision encoder", cols=("R1", "R5", "MnR"))),
    ("TopKTemporal: Table 5's baseline equals Table 2's CLIP4Clip row", row("001", "Table 5 (ablation)", "baseline") == row("001", "Table 2", "CLIP4Clip")),
    ("TopKTemporal: Table 4's K=12 equals Table 5's no-temporal-encoding row", row("001", "Table 4 (ablation)", "K=12") == row("001", "Table 5 (ablation)", "no temporal encoding")),
]  # fmt: skip
for text, ok in checks:
    print(f"{'yes' if ok else 'no '}  {text}")
ts2 = reported["003"][(reported["003"]["direction"] == "t2v") & reported["003"]["method"].isin(["TS2-Net", "TS2Net", "baseline (TS2-Net)", "baseline (TS2-Net, first stage)"]) & (reported["003"]["dataset"] == "MSR-VTT")]  # fmt: skip
print("CrossTVR's TS2-Net baseline, t2v R@5 by table:", dict(zip(ts2["table"], ts2["R5"])))

# %% [markdown]
# ## 4. Are the findings robust? A second benchmark
#
# A verdict reached on one generated benchmark is first a finding about that benchmark. So the notebooks that judge
# claims (05–10) ran a second time, unchanged and with the same budget and training seeds, on a **second synthetic
# benchmark** (profile `quick_alt`, `data/synthetic/quick_alt.json`) that differs from `quick` in its generator seed
# and in its factor mix, printed below. It has its own tiny CLIP, pretrained on its own stills the same way. Nothing
# in it was chosen to favour a method: the numbers were fixed before any head ran on it.
#
# A claim whose verdict differs between the two benchmarks is marked **fragile**: what our benchmark says about it
# depends on details of the benchmark that no paper claims to be about. Notebooks 03 and 04 were not run again (their
# hypotheses show as "only on quick"), nor were notebook 09's negatives hypotheses (read from a quick benchmark).
# One difference of code: `quick_alt` ran before the speed-ups of the WTI, X-Pool, TS2-Net, global-local and ETVA
# scoring (scores equal to the former code within 1e-6, tested), and `quick` was re-run after them; training turns
# such last-digit differences into slightly different runs. On quick the re-run moved single seeds by up to 1.0 R@1
# point (TS2-Net, the global-local full model, and the re-rankers on TS2-Net's stage 1) and changed one verdict:
# CrossTVR Table 6 "temporal text attention improves on the stage-1 baseline", whose CI had touched 0 (upper bound
# 0.0), now excludes it (-2.7 [-5.4, -0.4], opposite). A verdict that such a re-run can flip was on the edge.

# %%
from dataclasses import asdict

from tvrlib.synthetic.benchmark import load_config
from tvrlib.tables import compare_rankings, compare_verdicts, head_means

alt = None
if second is None:
    print("skipped: second = None")
elif not synthetic:
    print(f"skipped: profile {profile} is real data; the robustness check compares two generated benchmarks")
else:
    alt_prof = get_profile(second)
    a_cfg, b_cfg = asdict(load_config(prof["benchmark"])), asdict(load_config(alt_prof["benchmark"]))
    differ = {k: (a_cfg[k], b_cfg[k]) for k in a_cfg if k not in ("name", "description") and a_cfg[k] != b_cfg[k]}
    print(f"benchmark {prof['benchmark']!r} vs {alt_prof['benchmark']!r}, the settings that differ:")
    for k, (x, y) in differ.items():
        print(f"  {k}: {x} -> {y}")
    alt_dir = results_dir(second)
    if not (alt_dir / "claims.csv").exists():  # never compare against nothing: every claim would look one-sided
        print(
            f"skipped: {alt_dir} has no claims.csv. Run the notebooks on the second benchmark first: "
            f"make reproduce PROFILE={second} (over an hour on two CPU cores), or copy the committed results/{second}/ there"
        )
    else:
        alt_claims = load_claims(second, "claims")
        alt_hyp = load_claims(second, "hypotheses")
        alt = {"claims": alt_claims, "hypotheses": alt_hyp}
        shown = alt_dir.relative_to(PROJECT_ROOT) if alt_dir.is_relative_to(PROJECT_ROOT) else alt_dir
        print(f"{shown}/: {len(alt_claims)} paper claims, {len(alt_hyp)} hypotheses")

# %% [markdown]
# **The paper claims on both benchmarks.** Each side: our difference with its 95 % CI and the verdict, under the
# same rules as everywhere in the suite (a paired bootstrap over test videos, and the training seeds must agree):

# %%
if alt is None or claims.empty:
    print("skipped: no claims on one of the two profiles")
else:
    robust = compare_verdicts(claims, alt["claims"], (profile, second), digits=digits)
    print("status of the claims:", robust["status"].value_counts().to_dict())
    display(robust.set_index(["paper", "table", "claim"]).drop(columns="notebook"))

# %% [markdown]
# The fragile claims, with both verdicts:

# %%
if alt is None or claims.empty:
    print("skipped")
else:
    fragile = robust[robust["status"] == "fragile"]
    print(f"{len(fragile)} of {len(robust)} claims are fragile")
    for r in fragile.itertuples(index=False):
        print(f"  {r.paper} {r.table}, {r.claim}: {getattr(r, profile)} on {profile}, {getattr(r, second)} on {second}")
    decided = ["reproduces", "opposite"]
    flips = fragile[fragile[profile].isin(decided) & fragile[second].isin(decided)]
    print(
        f"{len(flips)} of the fragile claims change between 'reproduces' and 'opposite'; "
        f"{len(fragile) - len(flips)} move between a significant verdict and 'not significant'"
    )

# %% [markdown]
# **Our own hypotheses on both benchmarks** (the same rule: a different verdict makes a hypothesis fragile). Each
# difference is in its hypothesis's own metric (the `metric` column): R@1 points, or a mean rank on twins (MnR, lower
# is better, so a hypothesis that a head wins more twins is *supported* by a negative difference):

# %%
if alt is None or hypotheses.empty:
    print("skipped: no hypotheses on one of the two profiles")
else:
    robust_h = compare_verdicts(hypotheses, alt["hypotheses"], (profile, second), digits=2)
    print("status of the hypotheses:", robust_h["status"].value_counts().to_dict())
    display(robust_h.set_index(["notebook", "hypothesis"]))

# %% [markdown]
# **The ranking of the heads.** Within each notebook (one protocol), every pair of heads that ran on both benchmarks:
# does the second benchmark order them as the first? Means over training seeds; a difference of at most `rank_tie`
# R@1 points on either benchmark counts as a tie (section 1's tables show each head's spread over seeds, often larger
# than that: a same order is weak evidence on its own). This describes means, it is not a test.

# %%
if alt is None:
    print("skipped")
else:
    ranks = compare_rankings(head_means(RES), head_means(results_dir(second)), (profile, second), tie=rank_tie)
    ranks = ranks[ranks["heads on both"] > 1]
    tot = ranks[["pairs", "same order", "swapped", "tied on one"]].sum()
    print(
        f"{int(tot['pairs'])} pairs of heads on both: {int(tot['same order'])} in the same order, "
        f"{int(tot['swapped'])} swapped, {int(tot['tied on one'])} tied (within {rank_tie}) on at least one"
    )
    display(ranks.set_index("notebook"))

# %% [markdown]
# **The larger profile.** `full` (a 9,000-video training set, 3,000 test videos, 5 training seeds, longer budgets)
# should tighten the intervals without flipping verdicts; beside `quick` when its results exist:

# %%
full_claims = load_claims(larger, "claims") if larger else pd.DataFrame()
if larger is None:
    print("skipped: larger = None")
elif full_claims.empty:
    print(
        f"not run: results/{larger}/claims.csv does not exist. `make reproduce PROFILE={larger}` has not been run "
        "to the end on this project's machines (docs/performance.md gives its estimated cost); once it has, this "
        "cell shows both profiles' verdicts side by side."
    )
else:
    beside_full = compare_verdicts(claims, full_claims, (profile, larger), digits=digits)
    print("status of the claims:", beside_full["status"].value_counts().to_dict())
    display(beside_full.set_index(["paper", "table", "claim"]).drop(columns="notebook"))

# %% [markdown]
# ## 5. Figures
#
# **R@1 per row, per judged table.** Each bar is our head's mean t2v R@1 over training seeds, the whisker its range
# over seeds (min to max); the number at the right is the paper's R@1 for the same row. Rows with no number of ours
# (not yet run, not implemented, not comparable) are left out. The scales differ by design (see the top): read the
# order of the bars within one table against the order of the paper's numbers, not the values.

# %%
plotted = [(k, t[t["mean"].notna()]) for k, t in beside.items() if k in dict.fromkeys(judged) and t["mean"].notna().any()]
if not plotted:
    print("skipped: no per-seed results for any judged table on this profile")
else:
    ncols = 2
    nrows = math.ceil(len(plotted) / ncols)
    sizes = [max(len(t) for _, t in plotted[i * ncols : (i + 1) * ncols]) for i in range(nrows)]
    fig, axes = figure("11_ablation_r1", profile, width=13, height=0.32 * sum(sizes) + 1.1 * nrows, nrows=nrows, ncols=ncols, squeeze=False, gridspec_kw={"height_ratios": sizes})  # fmt: skip
    for ax, ((seed_id, table), t) in zip(axes.flat, plotted):
        y = np.arange(len(t))[::-1]
        labels = [textwrap.shorten(f"{m} ← {h} ({f})", 60) for m, h, f in zip(t["method"], t["ours"], t["from"])]
        colors = ["C1" if s == "stand-in" else "C0" for s in t["map_status"]]
        err = np.vstack([t["mean"] - t["min"], t["max"] - t["mean"]])
        ax.barh(y, t["mean"], xerr=err, color=colors, capsize=3)
        ax.set_yticks(y, labels, fontsize=7)
        ax.set_title(f"{PAPERS[seed_id]} {table}", fontsize=9)
        ax.set_xlabel(f"ours: t2v {metric} (mean, min–max over seeds)", fontsize=8)
        right = float(t["max"].max()) * 1.05 + 1
        for yy, p in zip(y, t[metric]):
            ax.text(right, yy, f"paper {p:.1f}" if pd.notna(p) else "", va="center", fontsize=7)
        ax.set_xlim(0, right * 1.25)
    for ax in list(axes.flat)[len(plotted) :]:
        ax.set_visible(False)
    save_figure(fig)
    n_stand_in = sum(int((t["map_status"] == "stand-in").sum()) for _, t in plotted)
    print(f"{sum(len(t) for _, t in plotted)} rows with a number of ours in {len(plotted)} tables; " + (f"{n_stand_in} orange bars are stand-ins (another notebook's run)." if n_stand_in else "no stand-ins: every bar is the run its verdict rests on."))  # fmt: skip

# %% [markdown]
# **The claims as directions.** Each claim "A beats B": the paper's difference A − B (x) against ours (y, with its
# paired 95 % CI), in the claim's metric. A claim that reproduces sits to the right of 0 and above 0 with its CI
# clear of the axis; one that goes the other way, below with its CI clear of it. The two axes have different scales
# on purpose: only the sign of y is compared with the sign of x.

# %%
judged_claims = claims[claims["our_difference"].notna()] if len(claims) else claims
if judged_claims.empty:
    print("skipped: no judged claims with a difference of ours on this profile")
else:
    fig, ax = figure("11_claims_directions", profile, width=7.5, height=4.5)
    for i, (v, group) in enumerate(judged_claims.groupby("verdict", sort=False)):
        x = group["paper_difference"].to_numpy(float)
        y = group["our_difference"].to_numpy(float)
        err = np.vstack([y - group["ci_low"].to_numpy(float), group["ci_high"].to_numpy(float) - y])
        ax.errorbar(x, y, yerr=err, fmt="o", ms=4, capsize=2, color=f"C{i}", label=f"{v} ({len(group)})")
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("paper: A − B (reported)")
    ax.set_ylabel(f"ours: A − B, 95 % CI ({profile})")
    ax.legend(fontsize=8)
    save_figure(fig)
    ours_d = judged_claims["our_difference"].where(judged_claims["our_difference"].abs() > 1e-9, 0.0)  # rounding: 0
    side = np.sign(judged_claims["paper_difference"]) == np.sign(ours_d)
    print(f"{int(side.sum())} of {len(judged_claims)} claims have a mean difference of ours on the paper's side (the verdict also needs the CI and every seed; a difference of 0 up to rounding counts for neither side).")  # fmt: skip

# %% [markdown]
# **Twin accuracy per factor.** The synthetic benchmark pairs some test queries with a *twin* video that differs in
# one factor only (frame order, motion direction, a small detail); twin accuracy is how often the gold video scores
# above its twin (50 % is chance or a tie). Mean over training seeds, from every `*_twins.csv` (notebooks 06–09) and
# the per-seed twin rows of notebooks 03 and 04 (their tidy results files; notebook 05 keeps its first seed's only,
# so it is left out); a head reported identically by several notebooks (the parameter-free Mean of 06–08) is shown
# once, with every notebook number. The number in brackets is the notebook: each trained its heads under its own
# budget.

# %%
twins = load_twins(RES)
tw = twin_matrix(twins)
if tw.empty:
    print("skipped: no *_twins.csv on this profile (twins are a synthetic-benchmark feature)")
else:
    fig, ax = figure("11_twin_accuracy", profile, width=7.5, height=0.28 * len(tw) + 1.5)
    im = ax.imshow(tw.to_numpy(float), aspect="auto", cmap="RdBu_r", vmin=30, vmax=70)
    ax.set_xticks(range(tw.shape[1]), tw.columns)
    ax.set_yticks(range(len(tw)), tw.index, fontsize=7)
    ax.grid(False)
    for (i, j), v in np.ndenumerate(tw.to_numpy(float)):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6, color="white" if abs(v - 50) > 12 else "black")
    fig.colorbar(im, ax=ax, label="twin accuracy (%), 50 = chance")
    ax.set_title("mean over seeds", fontsize=9)
    save_figure(fig)
    display(tw.round(1))
    n_seeds = twins.groupby(["notebook", "method"], sort=False)["seed"].nunique()
    few = n_seeds[n_seeds < n_seeds.max()]
    if len(few):
        print(f"fewer seeds than {n_seeds.max()}: " + ", ".join(f"{m} ({nb[:2]}): {n}" for (nb, m), n in few.items()))

# %% [markdown]
# ## 6. Saving the table
#
# Every row shown above, reported numbers and ours, goes to `results/<profile>/ablation_tables.csv` (one row per
# reported row and row of ours; `mean, std, min, max, seeds` over training seeds, empty where there is no number).

# %%
saved = pd.concat(list(beside.values()), ignore_index=True)
saved = saved.rename(columns={m: f"paper_{m}" for m in ["R1", "R5", "R10", "MdR", "MnR"]}).rename(columns={"mean": f"ours_{metric}_mean", "std": f"ours_{metric}_std", "min": f"ours_{metric}_min", "max": f"ours_{metric}_max"})  # fmt: skip
saved = saved.drop(columns=[f"ours {metric}"]).assign(metric=metric, experiment="ablation_tables")
path = save_results(profile, "ablation_tables", saved)
print(f"{len(saved)} rows -> {path.parent.name}/{path.name}")

# %% [markdown]
# ## What we found
#
# Every sentence below is printed from the files this notebook read.

# %%
rows = pd.concat([beside[k] for k in judged], ignore_index=True)
with_number = rows[rows["mean"].notna()]
missing = rows[rows["status"].str.startswith("not yet run")]
no_counterpart = rows[rows["status"].isin(["not implemented", "not comparable"])]
print(
    f"{len(judged)} judged tables hold {len(rows)} rows (reported rows x rows of ours): {len(with_number)} with a "
    f"number of ours, {len(missing)} not yet run on profile {profile}, {len(no_counterpart)} without a counterpart "
    f"({', '.join(f'{n} {s}' for s, n in no_counterpart['status'].value_counts().items()) or 'none'})."
)
if len(missing):
    print("Not yet run: " + ", ".join(sorted({s[len('not yet run ('):-1] for s in missing['status']})) + ".")
if len(with_number):
    rep_r1 = with_number[metric].dropna()
    print(
        f"Our t2v {metric} in these tables spans {with_number['mean'].min():.1f} to {with_number['mean'].max():.1f} "
        f"(means over seeds), the papers' {rep_r1.min():.1f} to {rep_r1.max():.1f} on the same rows: "
        + ("different benchmarks, so only the directions of differences are compared." if synthetic else "the setting differs (frozen features, the suite's protocol), so the directions of differences are what is compared.")  # fmt: skip
    )
if claims.empty:
    print(f"No claims judged on profile {profile} yet (notebooks 05–09 write claims.csv).")
else:
    counts = verdict_counts(claims)
    total = counts.drop(columns="total").sum()
    print(f"{len(claims)} paper claims judged: " + ", ".join(f"{n} {v}" for v, n in total.items() if n) + ".")
    for paper, r in counts.iterrows():
        print(f"  {paper}: " + ", ".join(f"{n} {v}" for v, n in r.drop("total").items() if n) + f" (of {r['total']}).")
    pc = per_comparison.loc["all papers"].drop("total")
    print(
        f"Counted once per comparison of the papers ({len(comparisons)} comparisons; {len(two)} judged under two "
        "readings): " + ", ".join(f"{n} {v}" for v, n in pc.items() if n) + "."
    )
    for v, group in claims.groupby("verdict", sort=False):
        print(f"{v.capitalize()}: " + "; ".join(f"{p} {t}, {c}" for p, t, c in zip(group["paper"], group["table"], group["claim"])) + ".")  # fmt: skip
if not hypotheses.empty:
    hc = hypotheses["verdict"].value_counts()
    print(f"{len(hypotheses)} hypotheses of ours: " + ", ".join(f"{n} {v}" for v, n in hc.items()) + ".")
if any(pairs for _, pairs in main_order.values()):
    print(
        f"Main tables, pairs of implemented methods whose mean {metric} of ours is ordered as the paper's (means only, "
        "rows from different notebooks' budgets, not a test): "
        + "; ".join(f"{p} {a} of {n}" for p, (a, n) in main_order.items() if n) + "."
    )
if not tw.empty:
    flat = [f for f in tw.columns if f != "all" and tw[f].notna().all() and (tw[f] - 50).abs().max() < 2.5]
    best = {f: tw[f].idxmax() for f in tw.columns if tw[f].notna().any() and f not in flat}
    if best:
        print("Highest twin accuracy per factor (mean over seeds): " + "; ".join(f"{f}: {m} {tw.loc[m, f]:.1f} %" for f, m in best.items()) + ".")  # fmt: skip
    if flat:
        print(f"Every head stays within 2.5 points of chance (50 %) on {', '.join(flat)} twins.")
if alt is not None and not claims.empty:
    st = robust["status"].value_counts()
    print(
        f"On the second benchmark ({second}): {st.get('stable', 0)} of {len(robust)} claims keep their verdict, "
        f"{st.get('fragile', 0)} change it (fragile)"
        + "".join(f", {n} {s}" for s, n in st.items() if s.startswith("only on"))
        + "."
    )
    if len(fragile):
        print("Fragile: " + "; ".join(f"{r.paper} {r.table}, {r.claim} ({getattr(r, profile)} -> {getattr(r, second)})" for r in fragile.itertuples(index=False)) + ".")  # fmt: skip
    if not hypotheses.empty:
        sh = robust_h["status"].value_counts()
        only = ", ".join(f"{n} {s}" for s, n in sh.items() if s.startswith("only on"))
        print(f"Hypotheses: {sh.get('stable', 0)} stable, {sh.get('fragile', 0)} fragile" + (f", {only}" if only else "") + f" (of {len(robust_h)}).")  # fmt: skip
    print(
        f"Head rankings within notebooks: {int(tot['same order'])} of {int(tot['pairs'])} pairs in the same order, "
        f"{int(tot['swapped'])} swapped, {int(tot['tied on one'])} tied within {rank_tie} R@1 points."
    )
bad_rows = impossible[["paper", "table", "dataset", "split", "direction", "method"]].drop_duplicates()
print(
    f"The papers: {len(inconsistencies)} hand-listed inconsistencies ("
    + ", ".join(f"{n} {t}" for t, n in inconsistencies["type"].value_counts().items())
    + f"); {len(bad_rows)} reported rows whose numbers cannot all be true "
    + f"({', '.join(f'{p} {n}' for p, n in bad_rows.groupby('paper', sort=False).size().items())})."
)  # fmt: skip
