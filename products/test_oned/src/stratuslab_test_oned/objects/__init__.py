"""One module per object kind (and the test clock): each registers its
XML-RPC methods with rpc.rpc when imported (cli imports them all)."""
