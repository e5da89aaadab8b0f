"""`make demo`: run the whole job offline on the embedded sample (see cxq_data.demo)."""
from cxq_data.demo import main

if __name__ == "__main__":
    main()
