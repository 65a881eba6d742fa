"""sensors: events and audio in, spikes out.

Event streams are numpy structured arrays with Tonic's dtypes (see
:mod:`sensors.events`), so every Tonic transform composes with ours.
"""
