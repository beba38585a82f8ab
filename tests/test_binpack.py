"""The one bin packer (best-fit decreasing), worked by hand, and its two users agreeing on it."""

from rewardlab.core.binpack import best_fit_decreasing
from rewardlab.models.layout import pack_rows
from rewardlab.training.samplers import pack


def test_best_fit_puts_an_item_in_the_fullest_bin_that_fits():
    """Sizes (7, 4, 4, 1), capacity 10: 7 → A (room 3); 4 → B (room 6); 4 → B (room 2); 1 fits A (room 3) and
    B (room 2): best fit takes B, the fuller one (first fit would take A). Bins [[0], [1, 2, 3]]."""
    assert best_fit_decreasing([7, 4, 4, 1], 10) == [[0], [1, 2, 3]]


def test_larger_items_first_equal_sizes_by_tiebreak_and_oversize_alone():
    """(3, 1, 2, 2) in 4: 3 → A; 2 (index 2) → B; 2 (index 3) → B (room 0); 1 → A. With the tiebreak (0, 0, 1, 0)
    index 3 comes before index 2 among the 2s, so B holds [3, 2]. (9, 3, 1) in 4: 9 > 4 gets a bin of its own,
    which nothing joins; 3 → B (room 1); 1 → B."""
    assert best_fit_decreasing([3, 1, 2, 2], 4) == [[0, 1], [2, 3]]
    assert best_fit_decreasing([3, 1, 2, 2], 4, tiebreak=[0, 0, 1, 0]) == [[0, 1], [3, 2]]
    assert best_fit_decreasing([9, 3, 1], 4) == [[0], [1, 2]]
    assert best_fit_decreasing([], 4) == []


def test_packed_rows_and_sampler_steps_use_the_same_packer():
    """pack_rows is the packer with the index tiebreak. With distinct sizes the tiebreak decides nothing, so the
    sampler's pack holds exactly the same bins, only in a seeded order: (7, 4, 6, 1, 3, 2) in 10 → 7 → A (3);
    6 → B (4); 4 → B (0); 3 → A (0); 2 → C (8); 1 → C (7)."""
    sizes = [7, 4, 6, 1, 3, 2]
    assert pack_rows(sizes, 10) == best_fit_decreasing(sizes, 10) == [[0, 4], [2, 1], [5, 3]]
    for seed in range(3):
        assert sorted(pack(sizes, 10, seed, 0)) == [[0, 4], [2, 1], [5, 3]]
