raise RuntimeError("init went wrong")
