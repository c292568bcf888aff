"""The sandboxed runner: executes one untrusted notebook and harvests what the checks need."""
