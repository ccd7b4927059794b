/** Process exit codes, documented in README. */
export const EXIT_OK = 0;
/** Runtime failure: a listener could not open, a probe verdict was not ok. */
export const EXIT_FAILURE = 1;
/** Usage error: bad flags or an invalid config file. */
export const EXIT_USAGE = 2;
