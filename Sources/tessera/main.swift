// The tessera command line: the commands live in TesseraCLI (where the tests
// reach them); this runs them.

import TesseraCLI

await TesseraCommand.runFromCommandLine()
