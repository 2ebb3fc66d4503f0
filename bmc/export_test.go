package bmc

// CloseWorkers is closeWorkers, for the tests of Manager.Close.
const CloseWorkers = closeWorkers
