"""Every training loss kind in one table: its config section, what a step must hold, its loss.

The trainer, the step objective and the config read this table instead of branching on the
kind. Adding a loss kind: one module (its section, a subclass of :class:`LossSection`, and its
step loss), its test, and its line here (an entry of :data:`LOSSES` and a member of
:data:`LossConfig`; a test checks the two agree).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import torch
from pydantic import Field

from paraxl.losses.additive_margin import AdditiveMarginConfig, InfoNCEConfig
from paraxl.losses.cosent import CosentConfig, scored_pair_step_loss
from paraxl.losses.hard_negatives import HardNegativeConfig
from paraxl.losses.mega_batch import pair_step_loss
from paraxl.losses.multi_positive import MultiPositiveConfig, group_step_loss
from paraxl.losses.step import GroupSteps, LossSection, PairSteps, ScoredPairSteps, StepIndex, StepNeeds

C = TypeVar("C", bound=LossSection)

# the training config's `loss:` section: one of these, picked by its `kind`
LossConfig = Annotated[
    AdditiveMarginConfig | InfoNCEConfig | MultiPositiveConfig | CosentConfig, Field(discriminator="kind")
]


@dataclass(frozen=True)
class LossKind(Generic[C]):
    """One loss kind.

    ``needs`` maps its section to what the step layout must hold (pairs with explicit negatives,
    K members per group, or scored pairs); ``loss`` maps the step's embeddings (T, dim), its layout, the
    section and the ``mining:`` section to a scalar loss.
    """

    name: str
    section: type[C]
    needs: Callable[[C], StepNeeds]
    loss: Callable[[torch.Tensor, StepIndex, C, HardNegativeConfig], torch.Tensor]


def _table(*kinds: LossKind[Any]) -> Mapping[str, LossKind[Any]]:
    table: dict[str, LossKind[Any]] = {}
    for kind in kinds:
        if kind.name in table:
            raise ValueError(f"loss kind {kind.name!r} is registered twice")
        table[kind.name] = kind
    return table


LOSSES: Mapping[str, LossKind[Any]] = _table(
    LossKind("additive_margin", AdditiveMarginConfig, lambda c: PairSteps(c.explicit_negatives), pair_step_loss),
    LossKind("info_nce", InfoNCEConfig, lambda c: PairSteps(c.explicit_negatives), pair_step_loss),
    LossKind("multi_positive", MultiPositiveConfig, lambda c: GroupSteps(c.members_per_group), group_step_loss),
    LossKind("cosent", CosentConfig, lambda c: ScoredPairSteps(), scored_pair_step_loss),
)


def step_needs(section: LossSection) -> StepNeeds:
    """What a step of this loss must hold (see :class:`PairSteps`, :class:`GroupSteps`, :class:`ScoredPairSteps`)."""
    return LOSSES[section.kind].needs(section)


def pair_kinds() -> list[str]:
    """The kinds whose steps are (anchor, positive) pairs: the ones that take explicit and mined negatives."""
    return [name for name, kind in LOSSES.items() if isinstance(kind.needs(kind.section()), PairSteps)]


def scored_kinds() -> list[str]:
    """The kinds whose steps are scored pairs (graded similarity): the ones that need scored data."""
    return [name for name, kind in LOSSES.items() if isinstance(kind.needs(kind.section()), ScoredPairSteps)]


def contrastive_loss(
    reps: torch.Tensor, step: StepIndex, section: LossSection, mining: HardNegativeConfig
) -> torch.Tensor:
    """The loss of ``section``'s kind on a step. Shapes: reps (T, dim) in the step's text order."""
    return LOSSES[section.kind].loss(reps, step, section, mining)
