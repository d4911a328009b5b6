"""The seed example, step by step with the lower-level API.

CSV of daily temperatures with a Date column -> MinMax scaling -> windows of 100 steps ->
GRU(50, returning sequences) -> GRU(50) -> Dense(1), Adam lr 1e-3, MSE, 10 epochs, batch 32 ->
predict the next day -> inverse-scale.

    python examples/seed_temperature.py [--csv path.csv] [--epochs 10]

Without --csv it uses the bundled data (``fastgru.datasets.load_temperature``).
``fastgru demo`` does the same in one command.
"""

import argparse

import pandas as pd
from sklearn.preprocessing import MinMaxScaler

from fastgru import GRURegressor, load_temperature, make_inference_window, make_windows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", help="CSV with Date and Temp columns")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--window", type=int, default=100)
    args = parser.parse_args(argv)

    df = pd.read_csv(args.csv, parse_dates=["Date"]) if args.csv else load_temperature()
    temps = df[["Temp"]].to_numpy()

    scaler = MinMaxScaler()
    scaled = scaler.fit_transform(temps)
    X, y = make_windows(scaled, window=args.window)  # X (n, 100, 1), y (n, 1)

    model = GRURegressor(units=(50, 50), epochs=args.epochs, batch_size=32, learning_rate=1e-3,
                         loss="mse", random_state=0, verbose=1)  # fmt: skip
    model.fit(X, y.ravel())

    last = make_inference_window(scaled, window=args.window)  # the 100 most recent days
    next_day = scaler.inverse_transform(model.predict(last).reshape(-1, 1))[0, 0]
    print(f"The predicted temperature for the next day is: {next_day:.2f}°C")


if __name__ == "__main__":
    main()
