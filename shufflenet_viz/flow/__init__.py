"""How information moves between channel groups: the channel shuffle, its structure and its measured effect.

Three views of one question, "which input channels can an output channel hear from?", one module each:

- `animation`: the shuffle itself as positions of channels (row -> g x C/g grid -> transpose -> row), and the
  paper's Figure 1 as stacked group convolutions;
- `connectivity`, `reachability`, `mixing`, `placement`: structure, boolean channel-to-channel connectivity read
  from the real modules and composed unit by unit, where groups meet with the shuffle off, and where the shuffle
  may sit;
- `influence`: measurement on an image, from the Jacobian of a unit or a run of units taken on copies (the
  shared model is never touched).

`sentences` builds every caption from those numbers, `ablation` switches a loaded model's shuffle off
and reads its accuracies beside the paper's Table 3 row for the same width and g. The names
below are the ones pages and tests use as `flow.<name>`.
"""

from .ablation import AblationAccuracy, manifest_ablation, paper_ablation, shuffle_off_reading, without_shuffle
from .animation import (ANIMATION_STAGES, MAX_ANIMATION_CHANNELS, MAX_ANIMATION_GROUPS, LayeredFlow, ShuffleAnimation,
                        shuffle_animation, shuffle_setting_problem, stacked_group_convs)
from .connectivity import (applied_permutation, compose, conv_connectivity, group_conv_connectivity, group_level,
                           groups_read_after_shuffle, is_block_diagonal, is_channelwise, label_totals,
                           permutation_connectivity, reached_groups, shuffle_connectivity, unit_connectivity)
from .influence import (Influence, cross_group_share, influence_matrix, jacobian_influence, measure_influence,
                        unit_influence)
from .mixing import mixing_in_span, mixing_without_shuffle
from .placement import PlacementCheck, moved_shuffle_unit, placement_check
from .reachability import (MixingPoint, ReachCounts, ReachStep, activation_at, point_label, reach_counts,
                           span_source_groups, stage_points, stage_reachability, stage_units, unit_source_groups)
from .sentences import (concatenation_text, describe_permutation, describe_source_groups, describe_unit_parts,
                        figure1_caption, format_share, index_map_name, influence_caption, part_label, reach_sentence,
                        shuffle_mixing_caption, shuffle_neighbour_labels, straddling_groups_reason, structure_caption,
                        toy_shuffle_sentence, ungrouped_conv_reason, unit_shuffle_caption)
