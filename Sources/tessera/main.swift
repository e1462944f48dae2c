// The tessera command line: the commands live in TesseraCLI (where the tests
// reach them); this runs them.

import TesseraCLI

// Before the first await: nothing but the main thread has allocated yet.
TesseraCommand.prepareProcess()
await TesseraCommand.runFromCommandLine()
