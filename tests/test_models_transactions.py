"""A brand's order log: known rates recovered, bad files explained row by row.

Parameter recovery: the engine simulates 3,000 people who first become customers and
then order, go dormant, wake, join the membership and delete the brand at known daily
rates for 540 days; its order log (one row per order, as a brand exports it) is fitted
and every rate must come back within a stated relative tolerance, about three times the
estimator's spread over seeds 1-4 at this size (standard deviations: repeat orders 0.5%,
member multiplier 2%, join 3%, customer deletion 2.5%, member deletion 2%, dormancy 5%,
waking 6%, dormant multiplier 16% -- the weakest, since dormant customers rarely
order -- order value 1%). Seed 11 is tested.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import build

from simdomain.errors import InputError
from simdomain.models.lifecycle import fit_rates, rates_fragment
from simdomain.models.pipeline import fit_transactions
from simdomain.models.transactions import (
    check_transactions,
    read_transactions,
    transaction_panel,
    transactions_from_simulation,
)
from simdomain.simulation import simulate

TRUE = {"repeat_order": 0.03, "member_order_multiplier": 2.0, "join": 0.004, "dormancy": 0.01,
        "wake": 0.02, "dormant_multiplier": 0.1, "deletion_customer": 0.002,
        "deletion_member": 0.001, "order_value_cny": 120.0, "order_value_cv": 0.5}
TOLERANCE = {"repeat_order": 0.05, "member_order_multiplier": 0.10, "join": 0.15,
             "deletion_customer": 0.10, "deletion_member": 0.20, "dormancy": 0.25,
             "wake": 0.25, "dormant_multiplier": 0.50, "order_value_cny": 0.03,
             "order_value_cv": 0.05}
HORIZON = 540


def known_rates_log() -> pd.DataFrame:
    scenario = build(
        name="known", horizon_days=HORIZON, initial_pool={"fan": 3000},
        segments={"mass": {"share": 1.0, "order_value_cny": TRUE["order_value_cny"],
                           "order_value_cv": TRUE["order_value_cv"]}},
        lifecycle={"first_order": 0.02, "repeat_order": TRUE["repeat_order"],
                   "member_order_multiplier": TRUE["member_order_multiplier"],
                   "join": TRUE["join"], "koc": 0.0, "dormancy": TRUE["dormancy"],
                   "wake": TRUE["wake"], "dormant_multiplier": TRUE["dormant_multiplier"],
                   "deletion": {"fan": 0.0, "customer": TRUE["deletion_customer"],
                                "member": TRUE["deletion_member"], "koc": 0.0}})
    result = simulate(scenario, seed=11, observe_days=range(HORIZON))
    return transactions_from_simulation(result)


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tx") / "orders.csv"
    known_rates_log().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def fitted(log_file):
    return fit_transactions(log_file, seed=1, estimators=("logistic",))


def test_known_rates_are_recovered(fitted):
    rates = fitted.rates
    assert rates.converged
    for name, truth in TRUE.items():
        estimate = getattr(rates, name)
        assert estimate == pytest.approx(truth, rel=TOLERANCE[name]), (name, estimate, truth)


def test_fragment_and_models_from_the_log(fitted):
    fit = fitted
    assert "lifecycle:" in fit.fragment and "repeat_order:" in fit.fragment
    assert "member_order_multiplier:" in fit.fragment and "join:" in fit.fragment
    assert fit.models["logistic"].targets_ == ["order_30d", "lapse_90d", "join_30d"]
    assert fit.evaluation.metric("lapse_90d", "logistic", "roc_auc") > 0.7
    tx = fit.transactions
    panel = transaction_panel(tx)
    assert (panel["recency_days"] >= 0).all() and (panel["orders"] >= 1).all()
    late = panel["day"] + 90 > tx.end_day
    assert panel.loc[late, "lapse_90d"].isna().all()


def test_the_fragment_without_member_dates_leaves_members_out():
    log = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c"],
                        "date": ["2026-01-01", "2026-01-20", "2026-01-03", "2026-03-01",
                                 "2026-02-01"],
                        "amount": ["10", "12.5", "8", "9", "30"]})
    tx = check_transactions(log, "small.csv")
    rates = fit_rates(tx)
    assert rates.member_order_multiplier is None and rates.join is None
    text = rates_fragment(rates, tx)
    assert "member" not in text.split("lifecycle:")[1].split("segments:")[0]


GOOD = "customer_id,date,amount,channel,member_join_date\n"


@pytest.mark.parametrize("body, expected", [
    ("customer,date,amount\na,2026-01-01,5\n",
     "orders.csv: columns: missing column 'customer_id'; did you mean 'customer'?"),
    ("customer_id,date\na,2026-01-01\n", "orders.csv: columns: missing column 'amount'"),
    ("customer_id,date,amount,chanel\na,2026-01-01,5,x\n",
     "orders.csv: columns: unknown column 'chanel'; did you mean 'channel'?"),
    (GOOD + "a,2026-01-01,5,x,\nb,2026-13-01,5,x,\n",
     "orders.csv: row 3 -> date: cannot read '2026-13-01' as a date (expected YYYY-MM-DD)"),
    (GOOD + "a,01/02/2026,5,x,\n",
     "orders.csv: row 2 -> date: cannot read '01/02/2026' as a date (expected YYYY-MM-DD)"),
    (GOOD + "a,2026-01-01,5,x,\na,2026-01-02,-3,x,\n",
     "orders.csv: row 3 -> amount: must be 0 or more, got -3"),
    (GOOD + "a,2026-01-01,five,x,\n", "orders.csv: row 2 -> amount: not a number: 'five'"),
    (GOOD + "a,2026-01-01,,x,\n", "orders.csv: row 2 -> amount: is empty"),
    (GOOD + ",2026-01-01,5,x,\n", "orders.csv: row 2 -> customer_id: is empty"),
    (GOOD + "a,2026-01-01,5,x,\nb,2026-01-01,5,x,\na,2026-01-01,5,x,\n",
     "orders.csv: row 4: duplicates row 2"),
    (GOOD + "a,2026-01-01,5,x,2026-01-05\na,2026-01-09,5,x,2026-02-01\n",
     "orders.csv: row 3 -> member_join_date: differs from row 2 of the same customer"),
    (GOOD + "a,2026-01-01,5,x,2026-02-30\n",
     "orders.csv: row 2 -> member_join_date: cannot read '2026-02-30' as a date"),
    (GOOD, "orders.csv: has a header but no orders"),
    ("", "orders.csv: cannot read it as CSV: the file is empty"),
])
def test_bad_files_name_the_row_and_column(tmp_path, body, expected):
    path = tmp_path / "orders.csv"
    path.write_text(body)
    with pytest.raises(InputError) as info:
        read_transactions(path)
    messages = [str(p).replace(str(tmp_path) + "/", "") for p in info.value.problems]
    assert any(m.startswith(expected) for m in messages), messages


def test_many_problems_are_capped(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(GOOD + "".join(f"c{i},2026-01-{i % 28 + 1:02d},-1,x,\n" for i in range(30)))
    with pytest.raises(InputError) as info:
        read_transactions(path)
    problems = info.value.problems
    assert len(problems) == 21 and str(problems[-1]).endswith("... and 10 more problems")


def test_missing_file():
    with pytest.raises(InputError, match="no such file"):
        read_transactions("/no/such/orders.csv")
