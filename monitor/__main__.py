from monitor.launch import main

raise SystemExit(main())
