"""placeholder"""
def simulate() -> None:
    """placeholder"""
