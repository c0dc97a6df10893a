"""`aiosim launch`: a kernel plus one OS process per agent, live progress, a report and a plot.

Library use (the Table-5 benchmark does this):

    kernel = KernelProcess.start(kernel_flags, state_dir)
    kernel.wait_ready(num_workers=1)
    session = run_session(kernel, specs, seed=0)        # concurrent; sequential=True for one at a time
    report = build_report(session, kernel.stats(), config)
    kernel.stop()

Imports no torch; matplotlib only inside `plot`.
"""
