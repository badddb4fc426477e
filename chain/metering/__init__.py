"""Contribution metering: the three dimensions (data, algorithm, compute) measured from evidence.

Submodules: measuring a dataset file, the red-line check for direct identifiers, the value of
providers' data to a model (Shapley), compute from job records, and the `ContributionMeter`
client. Each imports its heavy libraries itself, so importing this package stays cheap.
"""
