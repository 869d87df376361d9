"""The desktop app: Qt models over the OMS's read model, the main window, the ticket."""
