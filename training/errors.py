"""The one exception type training raises for bad input; the CLI turns it into a one-line reason."""


class TrainingError(Exception):
    """Input the pipeline cannot use: bad spec, bad data, bad config, or a failed export check."""
