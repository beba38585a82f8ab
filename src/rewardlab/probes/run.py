"""``rewardlab probe``: the bias profile of a reward model or an LLM judge on pairs derived from a data file.

Writes ``probes.json`` (the profile per scorer, the config, the data fingerprint, provenance),
``probes.md`` (the table) and ``probe-pairs-<name>.jsonl`` (every probe pair: probe, id, prompt, texts
and rewards), all in ``output_dir``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rewardlab.core.atomic import atomic_write_text
from rewardlab.core.bounds import NonNegative, Positive, Seed, check_bounds
from rewardlab.core.cells import model_name
from rewardlab.core.contract_options import ContractOptions, contract_options
from rewardlab.core.device import DeviceOptions, device_options
from rewardlab.core.errors import RewardlabError
from rewardlab.core.kinds import JUDGE_PREFIX
from rewardlab.core.outputs import claim_output_dir
from rewardlab.core.ownership import owns_outputs
from rewardlab.core.provenance import provenance
from rewardlab.data import fingerprint, load_comparisons
from rewardlab.probes.pairs import PROBES
from rewardlab.probes.profile import bias_profile, build_pairs, parse_probe_names
from rewardlab.probes.report import bias_tables
from rewardlab.scoring.loader import load_scorer, model_provenance

# what probe writes into output_dir: --overwrite removes these first
PROBE_WRITES = ("probes.json", "probes.md", "probe-pairs-*.jsonl")


@dataclass
class ProbeConfig(ContractOptions, DeviceOptions):
    model: list[str] = field(default_factory=list)  # rewardlab model directories, one column each
    judge: list[str] = field(
        default_factory=list
    )  # LLM judges: a model, key=value,... or a YAML (rewardlab.judges.run)
    data: str = ""  # preference data (any format `train` reads); probe pairs are derived from it
    format: str = "auto"  # the input format (rewardlab.data.formats.FORMAT_SPECS)
    # skip malformed rows (counted) instead of stopping at the first. Off, as in train and score (eval's default is
    # on; docs/cli.md)
    skip_invalid: bool = False
    limit: Positive | None = None  # use only the first N records
    probes: str = "all"  # comma list of probes (length, off_topic, concreteness, empty_reference, ...) or all
    seed: Seed = 0  # seeds every probe's choice of template texts
    n_boot: NonNegative = 1000  # bootstrap resamples for the reward-shift intervals
    batch_size: Positive = 32  # texts per forward
    output_dir: str = "runs/probe"  # probes.json, probes.md and probe-pairs-<model>.jsonl go here
    overwrite: bool = False  # replace the results in a non-empty --output-dir
    trust_modified: bool = False  # load models whose files differ from the hashes in rewardlab.json (reported)

    def __post_init__(self):
        check_bounds(self)  # the declared ranges bind however the config is built
        parse_probe_names(self.probes)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    cell = lambda x: str(x).replace("|", "\\|").replace("\n", " ")
    return [
        "| " + " | ".join(map(cell, header)) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(map(cell, row)) + " |" for row in rows),
    ]


def render_markdown(results: dict[str, dict], notes: list[str]) -> str:
    lines = ["# rewardlab probe: bias profile", ""]
    for table in bias_tables(results):
        lines += _md_table(table["header"], table["rows"]) + [""] + table["text"] + [""]
    for name, result in results.items():
        for probe, why in result["bias_profile"].get("skipped", {}).items():
            notes.append(f"{name}: {probe} not run: {why}")
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


@owns_outputs
def run_probe(cfg: ProbeConfig) -> Path:
    if not cfg.model and not cfg.judge:
        raise RewardlabError("give a model to probe: --model DIR (or repeat --model), or --judge SPEC")
    if not cfg.data:
        raise RewardlabError("give the preference data to derive probe pairs from: --data PATH")
    loaded = load_comparisons(cfg.data, format=cfg.format, skip_invalid=cfg.skip_invalid, limit=cfg.limit)
    records = loaded.records
    if not records:
        raise RewardlabError(f"no records in {cfg.data}")
    names = parse_probe_names(cfg.probes)
    out = claim_output_dir(
        cfg.output_dir,
        overwrite=cfg.overwrite,
        written=PROBE_WRITES,
        inputs={"--data": cfg.data, "--model": cfg.model},
        command="rewardlab probe",
    )
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for path in [*cfg.model, *(JUDGE_PREFIX + spec for spec in cfg.judge)]:
        scorer = load_scorer(path, contract_options(cfg), cfg.trust_modified, devices=device_options(cfg))
        name = model_name(scorer.name or path, results)
        profile = bias_profile(scorer, records, names, seed=cfg.seed, n_boot=cfg.n_boot, batch_size=cfg.batch_size)
        pairs = build_pairs(records, list(profile["pairs"]), cfg.seed, pointwise=False)
        lines = []
        for probe, rows in profile.pop("pairs").items():
            for pair, row in zip(pairs[probe], rows):
                prompt = pair.prompt if isinstance(pair.prompt, str) else list(pair.prompt)
                lines.append(
                    json.dumps(
                        {
                            "probe": probe,
                            **row,
                            "prompt": prompt,
                            "reference": pair.reference,
                            "biased": pair.biased,
                            "base": pair.base,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
        atomic_write_text(out / f"probe-pairs-{name}.jsonl", "".join(lines))
        results[name] = {"bias_profile": profile, "model": model_provenance(path, scorer)}
        del scorer
    notes = [f"{len(records)} records from {cfg.data}"]
    if loaded.skipped:
        notes.append(f"{len(loaded.skipped)} invalid records skipped (--skip-invalid); first: {loaded.skipped[0]}")
    prov = provenance(config=asdict(cfg), data_fingerprint=fingerprint(records))
    payload = {"results": results, "probes": names, "known_probes": list(PROBES), "notes": notes, "provenance": prov}
    atomic_write_text(out / "probes.json", json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
    atomic_write_text(out / "probes.md", render_markdown(results, list(notes)))
    return out
