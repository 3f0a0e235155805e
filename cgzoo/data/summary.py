"""A human-readable summary of a CG dataset (``cgzoo info``): size, types, box, density, force statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cgzoo.data.dataset import EXTXYZ_SUFFIXES, CGDataset, has_checksums
from cgzoo.units import density_g_cm3


def summarize(ds: CGDataset) -> dict[str, Any]:
    """Facts a user checks before training: counts, box and density range, per-type force statistics."""
    top = ds.topology
    volumes = np.abs(np.linalg.det(ds.boxes.astype(np.float64)))
    lengths = np.linalg.norm(ds.boxes.astype(np.float64), axis=2)
    density = density_g_cm3(float(top.masses.sum()), volumes)
    forces = ds.forces.astype(np.float64)
    per_type = {}
    for t, name in enumerate(top.type_names):
        sel = forces[:, top.bead_types == t]
        per_type[name] = {
            "count": int((top.bead_types == t).sum()),
            "mass_amu": float(top.masses[top.bead_types == t].mean()),
            "force_rms_component": float(np.sqrt(np.mean(sel**2))),
            "force_mean_norm": float(np.linalg.norm(sel, axis=-1).mean()),
        }
    net = np.linalg.norm(forces.sum(axis=1), axis=-1)
    dt = np.diff(ds.times)
    prov = ds.provenance
    return {
        "frames": ds.n_frames,
        "beads": ds.n_beads,
        "molecules": int(len(np.unique(top.molecule_ids))),
        "types": per_type,
        "bonds": int(len(top.bonds)),
        "angles": int(len(top.angles)),
        "dihedrals": int(len(top.dihedrals)),
        "box_lengths_mean_A": lengths.mean(axis=0).round(4).tolist(),
        "orthorhombic": bool(np.allclose(ds.boxes - np.einsum("fii->fi", ds.boxes)[:, :, None] * np.eye(3), 0.0)),
        "volume_A3": [float(volumes.min()), float(volumes.mean()), float(volumes.max())],
        "density_g_cm3": [float(density.min()), float(density.mean()), float(density.max())],
        "temperature_K": ds.temperature,
        "time_fs": [float(ds.times[0]), float(ds.times[-1])] if ds.n_frames else [],
        "frame_interval_fs": float(np.median(dt)) if len(dt) else None,
        "net_force_per_frame_mean": float(net.mean()),
        "force_rms_component": float(np.sqrt(np.mean(forces**2))),
        "mapping": prov.get("mapping", {}).get("name"),
        "mapping_sha256": prov.get("mapping", {}).get("sha256"),
        "force_map": _force_map_line(prov.get("force_map", {"kind": "basic"})),
        "source": [source_line(record) for record in prov.get("sources", [])],
        "command": prov.get("command"),
    }


def shown_path(path: str, cwd: Path | None = None) -> str:
    """A recorded path as a reader can use it: as given when relative, relative to ``cwd`` (default: the working
    directory) when inside it, else only its file name, since the absolute path of the machine that built a
    dataset names nothing on another."""
    p = Path(path)
    if not p.is_absolute():
        return path
    try:
        return str(p.relative_to((cwd or Path.cwd()).resolve()))
    except ValueError:
        return p.name


def source_line(record: dict[str, Any]) -> str:
    """One source file of a dataset's provenance: its path (:func:`shown_path`), size and SHA-256 prefix."""
    line = shown_path(str(record.get("path")))
    if "sha256" in record:
        line += f" ({record.get('bytes')} bytes, sha256 {str(record['sha256'])[:12]})"
    return line


def _force_map_line(record: dict[str, Any]) -> str:
    """The force map kind, and for an optimized map its frames, ridge and variance removed per bead type."""
    if record.get("kind") != "optimized":
        return str(record.get("kind"))
    removed = ", ".join(f"{t} {v['removed']:.0%}" for t, v in record["variance_by_type"].items())
    return f"optimized on {len(record['frames'])} frames, ridge {record['ridge']:g}; variance removed {removed}"


def summarize_file(path: str | Path) -> dict[str, Any]:
    """:func:`summarize` of a dataset file (``.h5`` or ``.extxyz``), after verifying it (checksums, schema, sanity) as every load does."""
    info = summarize(CGDataset.load(path))
    if Path(path).suffix.lower() in EXTXYZ_SUFFIXES:
        info["checksums"] = "none (extxyz holds none)"
    else:
        info["checksums"] = "verified" if has_checksums(path) else "none stored (file from an older cgzoo)"
    return info


def format_summary(info: dict[str, Any]) -> str:
    """Render :func:`summarize` output as aligned text lines, units in the labels."""
    lines = [
        f"frames            {info['frames']}  (t = {info['time_fs'][0]:.0f} … {info['time_fs'][1]:.0f} fs, "
        f"every {info['frame_interval_fs']} fs)" if info["frames"] else "frames            0",
        f"beads             {info['beads']} in {info['molecules']} molecules",
        f"bonded terms      {info['bonds']} bonds, {info['angles']} angles, {info['dihedrals']} dihedrals",
        f"box (Å)           {info['box_lengths_mean_A']} ({'orthorhombic' if info['orthorhombic'] else 'triclinic'})",
        "volume (Å³)       min {:.1f}  mean {:.1f}  max {:.1f}".format(*info["volume_A3"]),
        "density (g/cm³)   min {:.4f}  mean {:.4f}  max {:.4f}".format(*info["density_g_cm3"]),
        f"temperature (K)   {info['temperature_K']}",
        f"force RMS         {info['force_rms_component']:.4f} kcal/mol/Å per component; "
        f"mean |net force| per frame {info['net_force_per_frame_mean']:.3g}",
        "types:",
    ]
    for name, t in info["types"].items():
        lines.append(
            f"  {name:<8} n={t['count']:<6} mass={t['mass_amu']:.3f} amu  "
            f"force RMS={t['force_rms_component']:.4f}  mean |F|={t['force_mean_norm']:.4f} kcal/mol/Å"
        )
    lines.append(f"mapping           {info['mapping']} (sha256 {str(info['mapping_sha256'])[:12]})")
    lines.append(f"force map         {info['force_map']}")
    lines.append(f"source            {'; '.join(info['source']) or 'not recorded'}")
    lines.append(f"command           {info['command']}")
    if "checksums" in info:
        lines.append(f"checksums         {info['checksums']}")
    return "\n".join(lines)
