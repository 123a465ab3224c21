import datetime as dt

import pandas as pd

from m5_assets.defs.summary import compared, print_backtest


def test_a_loss_is_printed_as_worse_never_as_a_negative_better():
    assert compared(0.75, 1.0) == "25.0 % better"
    assert compared(1.0657, 0.8148) == "30.8 % worse"
    assert compared(1.528, 0.834, "seasonal naive") == "83.2 % worse than seasonal naive"
    assert compared(0.8, 0.8, "seasonal naive") == "equal to seasonal naive"
    assert compared(0.5, 0.0, "seasonal naive").startswith("no ratio")


def test_the_backtest_summary_says_worse_where_the_model_loses(capsys):
    day = dt.date(2016, 4, 25)
    scores = pd.DataFrame(
        [
            {
                "forecast_date": day,
                "model_version": "1",
                "wrmsse": 1.528,
                "seasonal_naive_wrmsse": 0.834,
                "moving_average_28_wrmsse": 0.915,
                "mean_rmsse": 1.0657,
                "moving_average_28_mean_rmsse": 0.8148,
            }
        ]
    )
    print_backtest(scores, [day])
    out = capsys.readouterr().out
    assert "(83.2 % worse)" in out and "(30.8 % worse)" in out and "better" not in out
