"""The melody composer: a small LSTM trained on POP909 melodies, sampled under musical rules."""
