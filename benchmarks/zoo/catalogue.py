"""The zoo's catalogue: every torchvision classifier and a curated list of timm CNNs."""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from benchmarks.zoo.torchvision_fix import import_timm, import_torchvision

DEFAULT_INPUT_SIZE = (3, 224, 224)
MAX_TIMM_INPUT = 256  # larger pretrained resolutions fall back to 224

# Curated timm CNNs: small variants (mostly < 30M parameters), grouped by family.
TIMM_CNNS: dict[str, tuple[str, ...]] = {
    "resnet": (
        "resnet10t",
        "resnet14t",
        "resnet18",
        "resnet18d",
        "resnet26d",
        "resnet34",
        "resnet34d",
        "resnet50",
        "resnet50d",
        "resnetaa50",
        "resnetblur18",
        "resnet50_gn",
    ),
    "resnetv2": ("resnetv2_18", "resnetv2_50d"),
    "resnext": ("resnext26ts", "resnext50_32x4d", "resnext50d_32x4d"),
    "seresnet": (
        "seresnet18",
        "seresnet50",
        "seresnext26d_32x4d",
        "legacy_seresnet18",
        "legacy_seresnext26_32x4d",
    ),
    "ecaresnet": ("ecaresnet26t", "ecaresnetlight", "ecaresnet50d_pruned"),
    "regnetx": ("regnetx_002", "regnetx_004", "regnetx_008", "regnetx_016", "regnetx_032"),
    "regnety": ("regnety_002", "regnety_004", "regnety_008", "regnety_016", "regnety_032"),
    "regnetz": ("regnetz_005", "regnetz_b16", "regnetz_c16", "regnetz_d8"),
    "efficientnet": (
        "efficientnet_b0",
        "efficientnet_b1",
        "efficientnet_b2",
        "efficientnet_lite0",
        "efficientnet_es",
        "efficientnet_em",
        "efficientnet_b1_pruned",
        "efficientnet_cc_b0_4e",
        "tf_efficientnet_b0",
        "tf_efficientnet_b1",
        "tf_efficientnet_lite0",
        "tf_efficientnet_es",
        "tf_efficientnet_cc_b0_4e",
    ),
    "efficientnetv2": (
        "efficientnetv2_rw_t",
        "efficientnetv2_rw_s",
        "gc_efficientnetv2_rw_t",
        "tf_efficientnetv2_b0",
        "tf_efficientnetv2_b1",
        "tf_efficientnetv2_b2",
        "tf_efficientnetv2_s",
    ),
    "mobilenetv1": ("mobilenetv1_100",),
    "mobilenetv2": ("mobilenetv2_050", "mobilenetv2_100", "mobilenetv2_110d", "mobilenetv2_140"),
    "mobilenetv3": (
        "mobilenetv3_small_050",
        "mobilenetv3_small_100",
        "mobilenetv3_large_100",
        "mobilenetv3_rw",
        "tf_mobilenetv3_small_minimal_100",
        "tf_mobilenetv3_large_100",
    ),
    "mobilenetv4": (
        "mobilenetv4_conv_small",
        "mobilenetv4_conv_medium",
        "mobilenetv4_conv_blur_medium",
        "mobilenetv4_conv_large",
    ),
    "mobilenet_edgetpu": ("mobilenet_edgetpu_100", "mobilenet_edgetpu_v2_s"),
    "mnasnet": ("mnasnet_050", "mnasnet_100", "mnasnet_small", "semnasnet_100", "spnasnet_100"),
    "ghostnet": ("ghostnet_050", "ghostnet_100", "ghostnetv2_100", "ghostnetv3_100"),
    "repghostnet": ("repghostnet_050", "repghostnet_100"),
    "lcnet": ("lcnet_050", "lcnet_100", "lcnetv2_small"),
    "densenet": ("densenet121", "densenet169", "densenetblur121d"),
    "dla": ("dla34", "dla46_c", "dla46x_c", "dla60x_c", "dla60"),
    "dpn": ("dpn48b", "dpn68"),
    "rexnet": ("rexnet_100", "rexnet_130", "rexnetr_100"),
    "cspnet": (
        "cspresnet50",
        "cspresnext50",
        "cspdarknet53",
        "cs3darknet_s",
        "cs3darknet_m",
        "darknet17",
        "cspnext_tiny",
    ),
    "convnext": (
        "convnext_atto",
        "convnext_femto",
        "convnext_pico",
        "convnext_nano",
        "convnext_tiny",
    ),
    "convnextv2": ("convnextv2_atto", "convnextv2_femto", "convnextv2_pico", "convnextv2_nano"),
    "repvgg": ("repvgg_a0", "repvgg_a1", "repvgg_b0"),
    "mobileone": ("mobileone_s0", "mobileone_s1"),
    "vgg": ("vgg11", "vgg11_bn"),
    "hrnet": ("hrnet_w18_small", "hrnet_w18_small_v2", "hrnet_w18"),
    "res2net": ("res2net50_26w_4s", "res2net50_14w_8s", "res2next50"),
    "resnest": ("resnest14d", "resnest26d"),
    "sknet": ("skresnet18", "skresnet34", "skresnext50_32x4d"),
    "selecsls": ("selecsls42b", "selecsls60"),
    "tresnet": ("tresnet_m",),
    "xception": ("xception41", "legacy_xception"),
    "inception": ("inception_v3", "inception_v4", "inception_resnet_v2"),
    "byobnet": ("gernet_s", "gernet_m", "resnet33ts", "eca_resnet33ts", "gcresnet33ts"),
    "nfnet": ("nf_resnet26", "nf_regnet_b0", "nf_regnet_b1", "nf_ecaresnet26", "nf_seresnet26"),
    "fbnet": ("fbnetc_100", "fbnetv3_b", "fbnetv3_d"),
    "hardcorenas": ("hardcorenas_a", "hardcorenas_c", "hardcorenas_f"),
    "mixnet": ("mixnet_s", "mixnet_m", "tf_mixnet_s"),
    "tinynet": ("tinynet_a", "tinynet_c", "tinynet_e"),
    "vovnet": ("ese_vovnet19b_dw", "ese_vovnet39b"),
    "hgnet": ("hgnet_tiny", "hgnetv2_b0", "hgnetv2_b1"),
    "fastvit": ("fastvit_t8", "fastvit_t12", "fastvit_s12"),  # RepMixer-only variants
    "repvit": ("repvit_m0_9", "repvit_m1"),
    "fasternet": ("fasternet_t0",),
    "starnet": ("starnet_s1",),
    "inception_next": ("inception_next_atto",),
    "rdnet": ("rdnet_tiny",),
}

# torchvision name prefix -> family; the first match wins, so longer prefixes come first.
_TORCHVISION_FAMILIES = (
    ("efficientnet_v2", "efficientnetv2"),
    ("efficientnet", "efficientnet"),
    ("wide_resnet", "wide_resnet"),
    ("resnext", "resnext"),
    ("resnet", "resnet"),
    ("regnet_x", "regnetx"),
    ("regnet_y", "regnety"),
    ("mobilenet_v2", "mobilenetv2"),
    ("mobilenet_v3", "mobilenetv3"),
    ("shufflenet_v2", "shufflenetv2"),
    ("swin_v2", "swinv2"),
    ("swin", "swin"),
    ("inception", "inception"),
)


@dataclass(frozen=True)
class ZooModel:
    """One classifier of the zoo."""

    source: str  # 'torchvision' or 'timm'
    name: str
    family: str
    input_size: tuple[int, int, int]  # (C, H, W)
    params_m: float

    @property
    def key(self) -> str:
        """File stem used in caches: ``<source>__<name>``."""
        return f"{self.source}__{self.name}"


def _torchvision_family(name: str) -> str:
    for prefix, family in _TORCHVISION_FAMILIES:
        if name.startswith(prefix):
            return family
    return re.split(r"[_\d]", name, maxsplit=1)[0]


@functools.cache
def torchvision_classifiers() -> list[ZooModel]:
    """Every classification model of ``torchvision.models`` at 224x224.

    224 works for all of them with random weights (inception_v3 included; its 299 is only the
    resolution of the pretrained weights). Parameter counts come from the weights metadata, so no
    model is built.
    """
    models = import_torchvision().models
    zoo = []
    for name in models.list_models(module=models):
        num_params = models.get_model_weights(name).DEFAULT.meta["num_params"]
        zoo.append(
            ZooModel(
                source="torchvision",
                name=name,
                family=_torchvision_family(name),
                input_size=DEFAULT_INPUT_SIZE,
                params_m=round(num_params / 1e6, 3),
            )
        )
    return zoo


def _timm_params_m(name: str) -> float:
    """Parameter count in millions, built on the meta device (no memory, no init cost)."""
    import torch

    timm = import_timm()
    try:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False)
    except Exception:  # some constructors need real tensors
        model = timm.create_model(name, pretrained=False)
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 3)


def _timm_input_size(name: str) -> tuple[int, int, int]:
    cfg = import_timm().get_pretrained_cfg(name)
    size = tuple(cfg.input_size) if cfg is not None and cfg.input_size else DEFAULT_INPUT_SIZE
    if len(size) != 3 or max(size[1:]) > MAX_TIMM_INPUT:
        return DEFAULT_INPUT_SIZE
    return (int(size[0]), int(size[1]), int(size[2]))


@functools.cache
def timm_cnns() -> list[ZooModel]:
    """The curated timm CNNs of ``TIMM_CNNS`` that exist in the installed timm version."""
    available = set(import_timm().list_models())
    zoo = []
    for family, names in TIMM_CNNS.items():
        for name in names:
            if name not in available:
                warnings.warn(f"timm has no model {name!r}; skipped", stacklevel=2)
                continue
            zoo.append(
                ZooModel(
                    source="timm",
                    name=name,
                    family=family,
                    input_size=_timm_input_size(name),
                    params_m=_timm_params_m(name),
                )
            )
    return zoo


def all_models() -> list[ZooModel]:
    """torchvision classifiers followed by timm CNNs."""
    return torchvision_classifiers() + timm_cnns()


def select(
    models: Iterable[ZooModel], only: str | None = None, limit: int | None = None
) -> list[ZooModel]:
    """Models whose ``<source>__<name>`` matches the regex ``only``; at most ``limit`` of them."""
    chosen = [m for m in models if only is None or re.search(only, m.key)]
    return chosen if limit is None else chosen[:limit]


def find_model(source: str, name: str) -> ZooModel:
    """Look a zoo model up by source and name."""
    pool = torchvision_classifiers() if source == "torchvision" else timm_cnns()
    for model in pool:
        if model.name == name:
            return model
    raise KeyError(f"{source}__{name} is not in the zoo")
