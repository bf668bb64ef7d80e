"""Which export a model folder serves: the rules that read the measured exports in card.json.

card["serving"] names the TFLite file the server runs; card["serving_browser"] the TF.js folder
browsers load. Each comes with its reason, in words, from the measurements.
"""

from __future__ import annotations

from typing import Any

from facemask.files import TFJS_DIR, TFJS_F16_DIR, TFJS_MIXED_DIR

BROWSER_MAX_BYTES = 2_500_000
"""A browser downloads at most this much classifier (model.json + weight shards)."""


BROWSER_MIN_AGREEMENT = 99.0
"""The browser export must pick Keras's label on this % of face crops..."""


BROWSER_MAX_ACCURACY_DROP = 0.5
"""...and lose at most this many points of accuracy (when the crops' true labels are known)."""


INT8_MIN_AGREEMENT = 99.0
"""Serve the int8 TFLite file only if it picks the same label as Keras on this % of crops..."""


INT8_MAX_TIME_RATIO = 0.9
"""...and takes at most this fraction of the float file's time per crop."""


def choose_serving(exports: dict[str, Any]) -> dict[str, str]:
    """card["serving"]: int8 TFLite when it agrees with Keras on >= 99% of the crops AND is
    measurably faster than float on this machine (at most INT8_MAX_TIME_RATIO of its time);
    otherwise float, which is exact. On CPUs without int8 dot-product instructions int8 buys
    a smaller file but no speed, so a little accuracy would be lost for nothing."""
    float_ = exports["tflite"]
    int8 = exports["tflite_int8"]
    ties = int8.get("near_ties", 0)
    measured = (
        f"int8 picks the same label as Keras on {int8['agreement']:g}% of {int8['n']} face crops "
        + (f"({ties} of its {int8['disagreements']} misses are near ties) " if ties else "")
        + f"(max prob diff {int8['max_abs_diff']:.3f}; {int8['ms_per_crop']:.2f} ms per crop vs "
        f"{float_['ms_per_crop']:.2f} ms for float)"
    )
    if int8["agreement"] < INT8_MIN_AGREEMENT:
        reason = f"{measured}, below the {INT8_MIN_AGREEMENT:g}% required: serving float."
    elif int8["ms_per_crop"] > INT8_MAX_TIME_RATIO * float_["ms_per_crop"]:
        reason = (
            f"{measured}: int8 is not faster here (it must take at most "
            f"{INT8_MAX_TIME_RATIO:.0%} of float's time), so serving the exact float file."
        )
    else:
        reason = (
            f"{measured}, at least the {INT8_MIN_AGREEMENT:g}% required and faster: serving int8."
        )
        return {"file": int8["file"], "runtime": "tflite", "reason": reason}
    return {"file": float_["file"], "runtime": "tflite", "reason": reason}


def choose_browser_serving(exports: dict[str, Any]) -> dict[str, str]:
    """card["serving_browser"]: the mixed export when it fits the download budget, agrees with
    Keras on >= 99% of crops and loses <= 0.5 point of accuracy; else float16 (exact labels)."""
    mixed = exports.get(TFJS_MIXED_DIR)
    fallback = TFJS_F16_DIR if TFJS_F16_DIR in exports else TFJS_DIR
    if not mixed or "agreement" not in mixed:
        return {"dir": fallback, "reason": "no measured mixed export: serving float weights."}
    measured = (
        f"{mixed['bytes'] / 1e6:.2f} MB, same label as Keras on {mixed['agreement']:g}% of "
        f"{mixed['n']} face crops"
    )
    if "accuracy" in mixed:
        measured += f", accuracy {mixed['accuracy']:g}% (Keras {mixed['keras_accuracy']:g}%)"
    drop = mixed.get("keras_accuracy", 0.0) - mixed.get("accuracy", 0.0)
    if (
        mixed["bytes"] <= BROWSER_MAX_BYTES
        and mixed["agreement"] >= BROWSER_MIN_AGREEMENT
        and drop <= BROWSER_MAX_ACCURACY_DROP
    ):
        return {"dir": TFJS_MIXED_DIR, "reason": f"{measured}: within the limits, served."}
    return {"dir": fallback, "reason": f"{measured}: outside the limits, serving {fallback}."}
