"""Display tables and plain words of the model comparison (``04_imbalance``, ``05_models``, the summary).

Intervals are written by :meth:`churnlib.intervals.Interval.text`. This module reads
:class:`churnlib.models.Candidate` objects by their attributes, and the selection checks of
:mod:`churnlib.selection` from the content of ``metrics.json`` (so the summary can word them from
the file alone); it imports nothing from the modelling modules.
"""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from churnlib.intervals import Interval

__all__ = ["agreement_sentences", "agreement_table", "baseline_sentence", "paired_table",
           "search_sentence", "selection_sentences", "leakage_sentence", "summary_sentences", "summary_table",
           "whatif_sentence", "whatif_table"]


def summary_table(candidates: Sequence, where: str = "cv",
                  metrics: Sequence[str] = ("roc_auc", "pr_auc", "f1", "precision", "recall", "brier")) -> pd.DataFrame:
    """Wide display table: one row per candidate, ``value (low–high)`` per metric, plus the F1-optimal
    out-of-fold threshold with its interval.

    Parameters
    ----------
    candidates : sequence of churnlib.models.Candidate
    where : {"cv", "holdout"}
        Which metrics to show.
    metrics : sequence of str
        Rows of the candidates' metric tables, in column order.

    Returns
    -------
    pandas.DataFrame
        Index ``(model, strategy)``; a failed candidate shows its error instead of metrics.
    """
    rows = []
    for c in candidates:
        res = getattr(c, where)
        row = {"model": c.model, "strategy": c.strategy}
        if res is None:
            row.update({m: (c.error or "n/a") for m in metrics})
        else:
            row.update({m: Interval.from_row(res.loc[m]).text() for m in metrics})
        lo, hi = c.threshold_interval
        row["threshold"] = Interval(c.threshold, lo, hi).text()
        rows.append(row)
    return pd.DataFrame(rows).set_index(["model", "strategy"])


# --------------------------------------------------------------------------------------------
# The selection checks in plain words (all from the content of metrics.json)
# --------------------------------------------------------------------------------------------

_METRIC_NAMES = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC"}


def _iv(d: dict | None) -> Interval:
    return Interval.from_row(d or {})


def _yes(flag: Any) -> str:
    return "yes" if flag else "no"


def paired_table(metrics: dict) -> pd.DataFrame:
    """The paired comparison: each candidate's CV score and its shortfall to the leader on the same folds.

    Parameters
    ----------
    metrics : dict
        The content of ``metrics.json`` (``selection``).

    Returns
    -------
    pandas.DataFrame
        Index ``(model, strategy)``, leader first; columns: CV score, mean over folds, shortfall to
        the leader (mean per-fold difference, corrected 95% interval), within noise of the leader,
        within one standard error, role (leader / chosen / no-skill baseline). Empty without a
        ``selection`` record.
    """
    sel = (metrics or {}).get("selection")
    if not sel:
        return pd.DataFrame()
    name = _METRIC_NAMES.get(sel["metric"], sel["metric"])
    rows = []
    for c in sel["candidates"]:
        role = ", ".join(r for r, on in (("leader", c["leader"]), ("chosen", c["chosen"]),
                                         ("no-skill baseline", not c["eligible"])) if on)
        short = Interval(c["shortfall"], c["shortfall_low"], c["shortfall_high"])
        rows.append({"model": c["model"], "strategy": c["strategy"], f"CV {name}": f"{c['cv']:.3f}",
                     f"mean over {sel['n_folds']} folds": f"{c['fold_mean']:.3f}",
                     "shortfall to the leader (95%)": "—" if c["leader"] else short.text(signed=True),
                     "within noise": "—" if c["leader"] else _yes(c["within_noise"]),
                     "within 1 SE": "—" if c["leader"] else _yes(c["within_one_se"]),
                     "role": role})
    return pd.DataFrame(rows).set_index(["model", "strategy"])


def selection_sentences(metrics: dict) -> list[str]:
    """How the model was chosen: the leader, the candidates within noise of it, the rule.

    Parameters
    ----------
    metrics : dict
        The content of ``metrics.json``.

    Returns
    -------
    list of str
        Markdown sentences (empty without a ``selection`` record).
    """
    sel = (metrics or {}).get("selection")
    if not sel:
        return []
    name = _METRIC_NAMES.get(sel["metric"], sel["metric"])
    eligible = [c for c in sel["candidates"] if c["eligible"]]
    noise = sel["within_noise_of_leader"]
    out = []
    if len(eligible) == 1:
        return [f"Only one candidate was compared: {sel['leader']}."]
    if sel["leader_clearly_best"]:
        out.append(f"**{sel['leader']} leads clearly**: on the same {sel['n_folds']} folds its {name} beats every "
                   "other candidate by more than the noise of the folds (paired per-fold differences).")
    else:
        out.append(f"**The leader, {sel['leader']}, is not clearly better than {len(noise)} of the "
                   f"{len(eligible) - 1} other candidates**: on the same {sel['n_folds']} folds their {name} "
                   "shortfalls to it are within noise (paired per-fold differences, 95% intervals corrected "
                   "for the folds' overlapping training rows). Naming the top score the winner would overstate "
                   "the evidence: the best of many similar scores is partly luck.")
    if sel["rule"] == "one_standard_error":
        out.append(f"By the one-standard-error rule (the simplest candidate whose shortfall is at most one "
                   f"standard error; simplest first: {', '.join(sel.get('simplicity', []))}), **{sel['chosen']}** "
                   "is chosen.")
    elif noise:
        out.append("The leader is kept: no simpler candidate is within one standard error of it.")
    if sel.get("no_skill_within_noise"):
        out.append("**The leader is not clearly better than the no-skill baseline** on the same folds.")
    return out


def search_sentence(metrics: dict) -> str:
    """The search, its confirmation on training rows it did not use, and its optimism ("" without one)."""
    s = ((metrics or {}).get("chosen") or {}).get("search") or {}
    conf = s.get("confirmation")
    if not s or not s.get("best_params") or not conf:
        why = s.get("why", "no search")
        return f"No search: {why}." if s else ""
    name = _METRIC_NAMES.get(conf["metric"], conf["metric"])
    score = s.get(f"best_cv_{conf['metric']}")
    text = (f"{s['method'].capitalize()} search over {s['budget']} settings on {conf['rows_search']:,} training rows: "
            f"its own CV {name} {score:.3f}. On the other {conf['rows_confirm']:,} training rows, which the search "
            f"did not use, the tuned parameters score {conf['tuned']:.3f} against {conf['default']:.3f} for the "
            f"registry defaults (gain {_iv(conf['gain']).text(signed=True)}): ")
    text += ("**tuned parameters kept**: they beat the defaults there by more than one standard error." if s["kept"]
             else "**defaults kept**: the tuned parameters do not beat them there by more than one standard error.")
    if s.get("optimism") is not None and s["optimism"] > 0:
        text += (f" The search's own score was optimistic by {s['optimism']:.3f} (search CV minus the confirmed "
                 "score; part of it can be a difference between the two parts, which the defaults' score there shows).")
    elif s.get("optimism") is not None:
        text += " The search's own score was not optimistic here (it is below the confirmed score)."
    return text


_VERDICT = {
    "better": "the chosen model beats it",
    "no clear difference": "**the chosen model does not clearly beat it**: a default gradient-boosting model "
                           "would do about as well",
    "worse": "**the default gradient-boosting model does better than the chosen model on the holdout**",
    "same model": "the chosen model is this baseline",
}


def baseline_sentence(metrics: dict) -> str:
    """The chosen model against the default gradient-boosting baseline on the holdout ("" without one)."""
    b = (metrics or {}).get("baseline")
    if not b:
        return ""
    h, d = b["holdout"], b["difference"]
    return (f"Default gradient boosting ({b['model']}, registry defaults, same columns) on the holdout: "
            f"ROC-AUC {_iv(h.get('roc_auc')).text()}, PR-AUC {_iv(h.get('pr_auc')).text()}. Chosen model minus it, "
            f"paired over the holdout's users: ROC-AUC {_iv(d.get('roc_auc')).text(signed=True)}, PR-AUC "
            f"{_iv(d.get('pr_auc')).text(signed=True)}: {_VERDICT[b['verdict']]}.")


def agreement_table(metrics: dict) -> pd.DataFrame:
    """CV against holdout per ranking metric: both intervals, the difference and the two flags."""
    a = (metrics or {}).get("agreement")
    if not a:
        return pd.DataFrame()
    rows = []
    for m, r in a["holdout_vs_cv"].items():
        rows.append({"metric": _METRIC_NAMES.get(m, m), "CV (95%)": Interval.from_row(r, "cv").text(),
                     "holdout (95%)": Interval.from_row(r, "holdout").text(),
                     "holdout − CV": f"{r['difference']:+.3f}", "z": f"{r['z']:+.1f}",
                     "outside the CV interval": _yes(r["outside_cv_interval"]),
                     "beyond combined uncertainty": _yes(r["beyond_combined"])})
    return pd.DataFrame(rows).set_index("metric")


def _cause_words(code: str, a: dict, metrics: dict) -> str:
    if code == "leak":
        return ("a leak: label information that the training folds share (a column or combination of columns "
                "that encodes the label, repeated users) lifts the CV score and does not carry over")
    if code == "shift":
        rates = (f"{a['churn_rate_train']:.1%} in training, {a['churn_rate_test']:.1%} in the holdout, "
                 f"p = {a['churn_rate_shift_p']:.2f}")
        if a["churn_rate_shift_p"] < 0.05:
            text = f"a shift between the parts: the holdout's users differ from the training users (churn rate {rates})"
        else:
            text = (f"a shift between the parts in what the users do (their churn rates match: {rates}), so the "
                    "same scores mean something else in the holdout")
        if a.get("split_given"):
            text += "; the parts come from a split column, perhaps from other times or sources"
        return text
    if code == "small_holdout":
        roc = a["holdout_vs_cv"].get("roc_auc") or next(iter(a["holdout_vs_cv"].values()))
        return (f"a small holdout: {a['n_test']:,} rows with {a['n_test_churners']:,} churners; its own interval "
                f"({roc['holdout_low']:.3f}–{roc['holdout_high']:.3f}) is wide, so a gap of this size can be chance")
    if code == "optimism":
        return "selection optimism: the best of several candidates (and of a search) looks better in CV than it is"
    if code == "more_training_rows":
        k = (metrics.get("settings") or {}).get("n_splits")
        share = f"{(k - 1) / k:.0%} of them" if k else "fewer"
        return (f"the final model is fitted on all training rows, the CV models on {share}: "
                "usually a small gain")
    return code


def agreement_sentences(metrics: dict) -> list[str]:
    """Do CV and the holdout agree, does a fold stand apart, and what a disagreement likely means.

    Parameters
    ----------
    metrics : dict
        The content of ``metrics.json`` (``agreement``).

    Returns
    -------
    list of str
        Markdown sentences, the verdict first (empty without an ``agreement`` record).
    """
    a = (metrics or {}).get("agreement")
    if not a:
        return []
    out = []
    cmp = a["holdout_vs_cv"]
    for m in a["holdout_flagged"]:
        r = cmp[m]
        where = "above" if r["difference"] > 0 else "below"
        out.append(f"**The holdout disagrees with cross-validation on {_METRIC_NAMES.get(m, m)}**: the holdout's "
                   f"{Interval.from_row(r, 'holdout').text()} lies {where} the CV estimate "
                   f"{Interval.from_row(r, 'cv').text()} by {r['difference']:+.3f}, beyond their combined "
                   f"uncertainty (z = {r['z']:+.1f}).")
    for m in a["outside_cv_interval"]:
        if m in a["holdout_flagged"]:
            continue
        r = cmp[m]
        where = "above" if r["difference"] > 0 else "below"
        out.append(f"The holdout {_METRIC_NAMES.get(m, m)} {r['holdout']:.3f} lies {where} the CV interval "
                   f"({r['cv_low']:.3f}–{r['cv_high']:.3f}) but within their combined uncertainty "
                   f"(z = {r['z']:+.1f}): the holdout is the smaller sample, so this alone is weak evidence.")
    for f in a["folds_apart"]:
        where = "above" if f["z"] > 0 else "below"
        out.append(f"**A CV fold stands apart**: fold {f['fold'] + 1} (repeat {f['repeat'] + 1}) scores "
                   f"{_METRIC_NAMES.get(f['metric'], f['metric'])} {f['score']:.3f}, {where} the other folds' "
                   f"{f['others_mean']:.3f} (z = {f['z']:+.1f}, beyond {a['z_fold']:g} standard errors).")
    if not out:
        parts = ", ".join(f"{_METRIC_NAMES.get(m, m)} {r['holdout']:.3f} within the CV interval "
                          f"({r['cv_low']:.3f}–{r['cv_high']:.3f})" for m, r in cmp.items())
        return [f"**Cross-validation and the holdout agree**: holdout {parts}; no CV fold stands apart."]
    if a["causes"]:
        lead = "Likely causes, most likely first" if not a["agree"] else "Possible reasons"
        out.append(f"{lead}: " + "; ".join(_cause_words(c, a, metrics) for c in a["causes"]) + ".")
    return out


def summary_sentences(metrics: dict) -> list[str]:
    """The stakeholder summary's plain sentences on how far the choice of model can be trusted.

    For :func:`churnlib.summary.model_quality_section` (after the holdout figures): whether the
    chosen model was clearly the best, whether the held-out check agrees with cross-validation
    (and what a disagreement likely means), and whether it beats a default gradient-boosting model.

    Parameters
    ----------
    metrics : dict or None
        The content of ``metrics.json``.

    Returns
    -------
    list of str
        Plain sentences (empty when ``metrics.json`` predates these checks).
    """
    metrics = metrics or {}
    out = []
    sel = metrics.get("selection")
    if sel and sum(c["eligible"] for c in sel["candidates"]) > 1:
        if sel["leader_clearly_best"]:
            out.append(f"The chosen model ({sel['chosen']}) was clearly the best of those compared.")
        else:
            n = len(sel["within_noise_of_leader"]) + 1
            total = sum(c["eligible"] for c in sel["candidates"])
            out.append(f"{n} of the {total} models compared (model and imbalance handling) scored within noise of "
                       "the best; "
                       + (f"the simplest of them ({sel['chosen']}) was chosen." if sel["rule"] == "one_standard_error"
                          else f"the leader ({sel['chosen']}) was kept, none simpler being as good."))
    a = metrics.get("agreement")
    if a:
        if a["agree"] and a.get("outside_cv_interval"):
            where = "above" if a.get("direction") == "above" else "below"
            out.append(f"The held-out score lies a little {where} the cross-validated range, within the uncertainty "
                       "of both (the held-out part is the smaller sample).")
        elif a["agree"]:
            out.append("The held-out check agrees with cross-validation.")
        else:
            what = []
            for m in a["holdout_flagged"]:
                r = a["holdout_vs_cv"][m]
                what.append(f"{_METRIC_NAMES.get(m, m)} {r['holdout']:.3f} on held-out users against "
                            f"{r['cv']:.3f} in cross-validation")
            if a["folds_apart"]:
                what.append("one cross-validation fold scores far from the others")
            causes = {"leak": "a leak", "shift": "a difference between the two parts of the data",
                      "small_holdout": "a small held-out part", "optimism": "optimistic model selection",
                      "more_training_rows": "the final model's larger training set"}
            out.append("Caution: " + "; ".join(what) + ". Likely "
                       + " or ".join(causes[c] for c in a["causes"][:3]) + "; treat the figures above as less certain.")
    b = metrics.get("baseline")
    if b and b["verdict"] in ("no clear difference", "worse"):
        out.append("It does not clearly beat a default gradient-boosting model on the held-out users"
                   + (" (which does better)." if b["verdict"] == "worse" else "."))
    return out


def leakage_sentence(metrics: dict | None) -> str:
    """One plain sentence on the columns left out because they give the label away ("" when none).

    Parameters
    ----------
    metrics : dict or None
        The content of ``metrics.json`` (its ``data.leakage`` screen, :func:`churnlib.leakage.screen_leaks`).

    Returns
    -------
    str
    """
    screen = ((metrics or {}).get("data") or {}).get("leakage") or {}
    dropped = screen.get("dropped") or []
    if not dropped:
        return ""
    relations = [c["relation"] for c in screen.get("combinations") or []]
    singles = screen.get("single_suspects") or []
    parts = [f"on its own, `{s['feature']}` separates leavers from stayers suspiciously well"
             + (f" (ROC-AUC {s['auc']:.2f})" if s.get("auc") is not None else "") for s in singles]
    parts += [f"{r}" for r in relations]
    return (f"{len(dropped)} column(s) were left out because they give the answer away rather than predict it: "
            + "; ".join(parts) + ".")


_FIGURE_NAMES = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "brier": "Brier score"}


def whatif_sentence(whatif: dict | None) -> str:
    """Plain words on the what-if model: what it is for and its holdout figures beside the main model's.

    Parameters
    ----------
    whatif : dict or None
        The ``whatif`` entry of ``metrics.json`` (:meth:`churnlib.whatif.WhatIfResult.to_dict`), or
        ``{"skipped": reason}`` when none was trained.

    Returns
    -------
    str
        E.g. "A simplified six-signal model for what-if questions, not the model that scores users:
        holdout ROC-AUC 0.690 (0.52–0.85) against the main model's 0.719 (0.545–0.902) ...".
    """
    if not whatif:
        return "No what-if model was trained (run the models stage)."
    if whatif.get("skipped"):
        return f"No what-if model: {whatif['skipped']}."
    own = _iv((whatif.get("holdout") or {}).get("roc_auc"))
    main = (whatif.get("main_holdout") or {}).get("roc_auc")
    rows = whatif.get("rows_test")
    where = (f" on the same {rows:,} held-out rows ({whatif.get('users_test', 0):,} users)" if rows else
             " on the same held-out users")
    text = ("A simplified six-signal model for what-if questions, not the model that scores users: holdout "
            f"ROC-AUC {own.text()}" + (f" against the main model's {_iv(main).text()}{where}" if main else where))
    if main and own.overlaps(_iv(main)):
        text += " (the intervals overlap: neither ranks users clearly better)"
    text += "."
    if own.covers(0.5) or own.below(0.5):
        return text + (" Its interval reaches 0.5: it does not rank users clearly better than chance, so its "
                       "answers only illustrate the directions it is built to follow.")
    return text + (" Use it to see which way the risk moves when a signal changes; the risk list and its "
                   "reasons come from the main model.")


def whatif_table(whatif: dict | None) -> pd.DataFrame:
    """The what-if model's holdout figures beside the main model's (``value (low–high)``).

    Parameters
    ----------
    whatif : dict or None
        The ``whatif`` entry of ``metrics.json``.

    Returns
    -------
    pandas.DataFrame
        Index ROC-AUC, PR-AUC, Brier score; columns for the main model and the what-if model (empty
        when no what-if model was trained).
    """
    if not whatif or whatif.get("skipped"):
        return pd.DataFrame()
    own, main = whatif.get("holdout") or {}, whatif.get("main_holdout") or {}
    names = [k for k in ("roc_auc", "pr_auc", "brier") if k in own]
    return pd.DataFrame({"main model (holdout)": [_iv(main.get(k)).text() if main.get(k) else "n/a" for k in names],
                         "what-if model, 6 signals (holdout)": [_iv(own[k]).text() for k in names]},
                        index=pd.Index([_FIGURE_NAMES[k] for k in names], name="metric"))
